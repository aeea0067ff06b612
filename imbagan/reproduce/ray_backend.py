"""The same jobs as Ray tasks: one task per job, asking for a GPU when the cluster has any.

Results come back to the driver (``ray.get``), which writes the cells into the reproduction folder,
so the table needs no storage shared with the workers. A worker keeps the job's state (its run id, to
resume) in the driver's folder when it can see it (one machine, shared storage), else under its own
``~/.cache/imbagan/reproduce/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

_PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _task(job: dict, folder: str, root: str) -> dict:
    from imbagan.reproduce import jobs as J

    state_dir = Path(folder)
    if not (state_dir / "jobs.json").is_file():  # this node cannot see the driver's folder
        state_dir = Path.home() / ".cache" / "imbagan" / "reproduce" / Path(folder).name
    lines: list[str] = []
    cell = J.execute(job, state_dir, Path(root), log=lines.append)
    cell["log_tail"] = lines[-20:]
    return cell


def run(jobs: list[dict], folder: Path, root: Path, address: str, log: Callable[[str], None]) -> Iterator[dict | str]:
    """Yield each job's cell as it finishes (or a sentence saying why it failed)."""
    import ray

    env = {k: os.environ[k] for k in ("IMBAGAN_THREADS", "IMBAGAN_DATA", "IMBAGAN_CACHE") if k in os.environ}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    started_here = not ray.is_initialized()
    if started_here:
        # "local": a Ray started here for this reproduction; "auto" or host:port: an existing cluster.
        kw = {"address": None if address == "local" else address, "log_to_driver": False}
        if address == "local":  # light: no dashboard, a small object store (cells are a few kB)
            kw.update(include_dashboard=False, object_store_memory=200 * 2**20)
        ray.init(**kw)
    refs: dict = {}
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        # The environment travels with each task, whoever started Ray: this code on the path, the thread cap.
        task = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0, max_retries=0,
                          runtime_env={"env_vars": env})(_task)
        log(f"ray: {ray.cluster_resources().get('CPU', 0):g} CPUs, {gpus:g} GPUs; {len(jobs)} task(s)"
            + (", one GPU each" if gpus else ""))
        refs = {task.remote(j, str(folder), str(root)): j for j in jobs}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            job = refs.pop(done[0])
            try:
                yield ray.get(done[0])
            except Exception as e:  # the task's exception, re-raised by Ray
                yield f"{job['id']}: failed on Ray ({type(e).__name__}: {str(e).splitlines()[0][:300]})"
    finally:
        for ref in refs:  # the driver stopped early: tasks not collected are cancelled, not left running
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()
