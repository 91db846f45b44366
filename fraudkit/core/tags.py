"""Every tag name the kit writes or reads, defined once.

fraudkit's own tags share the ``fraudkit.`` prefix; MLflow's reserved tags that the kit
sets or reads are named here too, so no module spells a tag inline. Run tags, model
version tags, registered model tags and experiment tags are grouped by what carries them.
"""

from __future__ import annotations

__all__ = [
    "ALIAS_MOVE_TAG_PREFIX",
    "DATA_FINGERPRINT_TAG",
    "ERROR_TAG",
    "EVAL_DATASET_TAG",
    "EVAL_DIGEST_TAG",
    "EXPERIMENT_KIND_TAG",
    "EXPERIMENT_TYPE_TAG",
    "FAILED_CELL_TAG",
    "GIT_COMMIT_TAG",
    "LABEL_TAG",
    "MLFLOW_DATASET_CONTEXT_TAG",
    "MLFLOW_GIT_COMMIT_TAG",
    "MLFLOW_SOURCE_NAME_TAG",
    "MLFLOW_SOURCE_TYPE_TAG",
    "ML_EXPERIMENT_KIND",
    "MODEL_A_TAG",
    "MODEL_B_TAG",
    "MODEL_CARD_TAG",
    "MODEL_CLASS_TAG",
    "MODEL_ID_TAG",
    "MODEL_NAME_TAG",
    "MODEL_TYPE_TAG",
    "MODEL_VERSION_TAG",
    "MONITORED_MODEL_TAG",
    "NONFINITE_METRICS_TAG",
    "NOTEBOOK_TAG",
    "PARENT_RUN_TAG",
    "PIPELINE_TAG",
    "PROMPT_TAG",
    "REPORT_DIR_TAG",
    "SCORING_OUTPUT_TAG",
    "SCORING_RETRIED_TAG",
    "SCORING_ROWS_TAG",
    "SCORING_TAG",
    "SOURCE_RUN_TAG",
    "SUMMARY_TAG_PREFIX",
    "SWEEP_EXPERIMENT_TAG",
    "SWEEP_FAILED_TAG",
    "SWEEP_FINISHED_TAG",
    "SWEEP_INDEX_TAG",
    "SWEEP_NOTEBOOK_TAG",
    "SWEEP_POINTS_TAG",
    "SWEEP_POINT_TAG",
    "SWEEP_RUN_TAG",
    "TAG_PREFIX",
    "TRUNCATED_PARAMS_TAG",
    "data_fingerprint_tag",
]

TAG_PREFIX = "fraudkit."

# --- Run tags every kit run carries (MlflowManager.run_tags) ---------------------------
EXPERIMENT_TYPE_TAG = f"{TAG_PREFIX}experiment_type"  # training, ab_testing, ...
LABEL_TAG = f"{TAG_PREFIX}label"  # the label in the structured run name
NOTEBOOK_TAG = f"{TAG_PREFIX}notebook"  # the notebook file a runner run executed
PIPELINE_TAG = f"{TAG_PREFIX}pipeline_id"  # the pipeline a run belongs to
GIT_COMMIT_TAG = f"{TAG_PREFIX}git_commit"
# The digest of the data a run trained or evaluated on; one tag per context beside it.
DATA_FINGERPRINT_TAG = f"{TAG_PREFIX}data_fingerprint"
# Flat copies of a run's summary, one tag per scalar, that the index and history read.
SUMMARY_TAG_PREFIX = f"{TAG_PREFIX}summary."
# Set when batch logging had to truncate parameters or drop non-finite metric values.
TRUNCATED_PARAMS_TAG = f"{TAG_PREFIX}truncated_params"
NONFINITE_METRICS_TAG = f"{TAG_PREFIX}nonfinite_metrics"

# --- Run tags of particular run kinds ---------------------------------------------------
MODEL_A_TAG = f"{TAG_PREFIX}model_a"  # an A/B run's two arms
MODEL_B_TAG = f"{TAG_PREFIX}model_b"
MONITORED_MODEL_TAG = f"{TAG_PREFIX}monitored_model"  # a monitoring run's model
# Written by the runner, read by the index: the run's report folder (relative to the
# reports folder), and where and how a failed notebook failed.
REPORT_DIR_TAG = f"{TAG_PREFIX}report_dir"
FAILED_CELL_TAG = f"{TAG_PREFIX}failed_cell"
ERROR_TAG = f"{TAG_PREFIX}error"

# --- Sweeps: the sweep run, then each of its child runs ----------------------------------
SWEEP_EXPERIMENT_TAG = f"{TAG_PREFIX}sweep"  # on the sweep run: "true"
# On the sweep run, for the report index: the notebook, the number of points, and (set when
# the sweep ends) how many finished and failed.
SWEEP_NOTEBOOK_TAG = f"{TAG_PREFIX}sweep.notebook"
SWEEP_POINTS_TAG = f"{TAG_PREFIX}sweep.points"
SWEEP_FINISHED_TAG = f"{TAG_PREFIX}sweep.finished"
SWEEP_FAILED_TAG = f"{TAG_PREFIX}sweep.failed"
SWEEP_RUN_TAG = f"{TAG_PREFIX}sweep_run_id"  # on each child run: the sweep run's id
SWEEP_POINT_TAG = f"{TAG_PREFIX}sweep_point"  # on each child run: JSON of its varied params
SWEEP_INDEX_TAG = f"{TAG_PREFIX}sweep_index"  # on each child run: the point's index

# --- Batch scoring (fraudkit score): the scoring run -------------------------------------
SCORING_TAG = f"{TAG_PREFIX}scoring"  # "true": the run scored a file (fraudkit.scoring)
SCORING_OUTPUT_TAG = f"{TAG_PREFIX}scoring.output"  # the folder of Parquet parts
SCORING_ROWS_TAG = f"{TAG_PREFIX}scoring.rows_once"  # set once every row is there once
SCORING_RETRIED_TAG = f"{TAG_PREFIX}scoring.retried_parts"  # parts whose worker was lost

# --- Model version tags (log_model_with_metadata) ------------------------------------------
SOURCE_RUN_TAG = f"{TAG_PREFIX}run_id"  # the run that logged the version
MODEL_CLASS_TAG = f"{TAG_PREFIX}model_class"  # the estimator's class name
MODEL_CARD_TAG = f"{TAG_PREFIX}model_card"  # the run artifact folder of its model card
MODEL_TYPE_TAG = f"{TAG_PREFIX}model_type"  # the kit's model type (logistic, hgb, ...)
# The MLflow 3 logged model behind the version (SQL registries leave
# ModelVersion.model_id empty) and the dataset its evaluation metrics were measured on.
MODEL_ID_TAG = f"{TAG_PREFIX}model_id"
EVAL_DATASET_TAG = f"{TAG_PREFIX}eval_dataset"
EVAL_DIGEST_TAG = f"{TAG_PREFIX}eval_digest"
# On a run that registered a version: which model and version it registered.
MODEL_NAME_TAG = f"{TAG_PREFIX}model_name"
MODEL_VERSION_TAG = f"{TAG_PREFIX}model_version"

# --- Registered model tags -----------------------------------------------------------------
# One tag per alias move: ``<prefix><alias>.<stamp>`` holding who/when/from/to as JSON.
ALIAS_MOVE_TAG_PREFIX = f"{TAG_PREFIX}alias_move."

# --- MLflow's own tags that the kit sets or reads ------------------------------------------
PARENT_RUN_TAG = "mlflow.parentRunId"
MLFLOW_SOURCE_NAME_TAG = "mlflow.source.name"
MLFLOW_SOURCE_TYPE_TAG = "mlflow.source.type"
MLFLOW_GIT_COMMIT_TAG = "mlflow.source.git.commit"
MLFLOW_DATASET_CONTEXT_TAG = "mlflow.data.context"
PROMPT_TAG = "mlflow.prompt.is_prompt"  # registered "models" that are prompts
#: The experiment tag MLflow's UI reads and writes as the experiment's kind.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
#: Its value the UI labels "Machine learning" (custom model development).
ML_EXPERIMENT_KIND = "custom_model_development"


def data_fingerprint_tag(context: str) -> str:
    """Return the tag holding the digest of the data a run used as ``context``."""
    return f"{DATA_FINGERPRINT_TAG}.{context}"
