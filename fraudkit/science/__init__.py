"""Science: data, simulators, models, metrics, drift, estimation, monitoring and A/B tests.

Pure computation on frames and arrays. Nothing here imports MLflow, papermill, skops,
click or distributed, so these modules test fast and can be reused anywhere.
"""

__all__: list[str] = []
