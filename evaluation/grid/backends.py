"""Where grid cells run: in this process, in local worker processes, or on a Ray cluster.

Every backend runs :func:`~evaluation.grid.cell_run.run_cell` on one torch thread per cell
(``torch.set_num_threads(1)``: small networks gain nothing from more, and several workers'
thread pools would fight over the cores), on the CPU unless a device is named, so the same grid
and seeds give the same numbers, and the same table, on every backend.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from evaluation.grid.cell_run import run_cells_together
from evaluation.grid.cells import Cell

__all__ = ["BACKENDS", "execute", "run_cells"]

BACKENDS = ("local", "ray")
"""``local``: worker processes on this machine (``workers=1``: this process); ``ray``: Ray tasks."""

Job = tuple[list[dict[str, Any]], list[str]]
"""Cells as JSON and their folders, trained together (one ensemble): what crosses to a worker."""
Done = Callable[[Job, list[dict[str, Any]] | None, BaseException | None], None]
"""Called once per job as it ends, with its cells' ``cell.json`` records or its error."""


def execute(cells: list[dict[str, Any]], folders: list[str], device: str) -> list[dict[str, Any]]:
    """Run one job on one torch thread (the function every worker calls); its cells' records."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_cells_together([Cell.from_dict(c) for c in cells], folders, device=device)
    finally:
        torch.set_num_threads(threads)


def run_cells(
    jobs: Sequence[Job],
    done: Done,
    *,
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    device: str = "cpu",
) -> None:
    """Run every job, calling ``done`` as each ends (in completion order); errors go to ``done``.

    Args:
        jobs: the cells (as dicts) and their folders, each job trained as one ensemble.
        done: called with the job and its record, or its exception.
        backend: ``local`` or ``ray``.
        workers: local worker processes (1 runs in this process); for Ray with no ``address``,
            the CPUs of the local cluster it starts.
        address: the Ray cluster to join (``auto``, ``ray://host:port``); None starts a local
            one, unless Ray is already initialised in this process.
        device: the torch device of every cell.
    """
    if backend == "ray":
        _run_ray(jobs, done, workers, address, device)
    elif workers == 1:
        for job in jobs:
            try:
                record = execute(*job, device)
            except Exception as error:  # reported per cell; the others go on
                done(job, None, error)
            else:
                done(job, record, None)
    else:
        _run_processes(jobs, done, workers, device)


def _run_processes(jobs: Sequence[Job], done: Done, workers: int, device: str) -> None:
    context = multiprocessing.get_context("spawn")  # no forked torch thread pools
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {pool.submit(execute, *job, device): job for job in jobs}
        for future in concurrent.futures.as_completed(futures):
            error = future.exception()
            done(futures[future], None if error else future.result(), error)


def _run_ray(
    jobs: Sequence[Job], done: Done, workers: int, address: str | None, device: str
) -> None:
    try:
        import ray
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            "the ray backend needs Ray: pip install 'noise-preference[ray]'", name="ray"
        ) from error
    with _ray_session(ray, workers, address):
        remote = ray.remote(num_cpus=1, max_retries=0)(execute)
        pending = {remote.remote(*job, device): job for job in jobs}
        while pending:
            finished, _ = ray.wait(list(pending), num_returns=1)
            for ref in finished:
                job = pending.pop(ref)
                try:
                    record = ray.get(ref)
                except Exception as error:  # a RayTaskError wrapping the cell's error
                    done(job, None, getattr(error, "cause", None) or error)
                else:
                    done(job, record, None)


@contextlib.contextmanager
def _ray_session(ray: Any, workers: int, address: str | None) -> Iterator[None]:
    """Ray initialised for the block: joined at ``address``, or a local cluster of ``workers``.

    A session started here is shut down after the block; one already running is left as it was.
    """
    if ray.is_initialized():
        yield
        return
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
