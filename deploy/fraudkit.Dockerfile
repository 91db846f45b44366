# The image of the Dask scheduler and workers in docker-compose.yml: fraudkit installed
# from this checkout, with its notebooks and its Jupyter kernel, so every worker runs the
# notebooks exactly as `fraudkit run` does on a laptop. Build context: the checkout's root
# (docker-compose.yml sets it); fraudkit.Dockerfile.dockerignore keeps .venv, the store and
# reports out of it.

# Client, scheduler and workers must run the same Python minor version and the same Dask
# version, and pyproject.toml sets floors, not pins: PYTHON_VERSION and DASK_VERSION
# (docker-compose.yml passes them on) take the client's.
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim

ARG DASK_VERSION=
WORKDIR /opt/fraudkit
COPY pyproject.toml README.md ./
COPY fraudkit ./fraudkit
COPY notebooks ./notebooks
# bokeh serves the scheduler's dashboard (port 8787); the kit itself does not need it.
RUN pip install --no-cache-dir -e . "bokeh>=3.1" \
        ${DASK_VERSION:+"dask[distributed]==${DASK_VERSION}"} \
    && python -m ipykernel install --sys-prefix --name fraudkit --display-name "Python (fraudkit)"

# Workers keep only scratch copies of executed notebooks: the MLflow server holds the runs
# and their artifacts, and the client copies its reports from there.
RUN useradd --create-home fraudkit \
    && install -d -o fraudkit -g fraudkit /home/fraudkit/work
USER fraudkit
ENV FRAUDKIT_HOME=/home/fraudkit/work \
    FRAUDKIT_NOTEBOOKS_DIR=/opt/fraudkit/notebooks \
    OMP_WAIT_POLICY=PASSIVE \
    MPLBACKEND=Agg
WORKDIR /home/fraudkit/work
