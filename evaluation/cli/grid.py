"""``noisepref grid`` and ``noisepref reproduce`` (the preset grids and the remedies)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from evaluation.cli._common import add_command, add_common_options, check_output, run_options
from evaluation.cli._types import nonempty_path, positive_int

GRID_HELP = "train and sweep every cell of an experiment grid (TOML), resumable"

GRID_DESCRIPTION = (
    "Validate a grid spec (see examples/grid.toml), then train and sweep each cell not yet "
    "done into OUT/<cell>-<hash>; write OUT/summary.csv (one row per cell: sigma*, its "
    "interval, the metric at 0 and at sigma*, their ratio), settings.txt and the figures. "
    "Rerunning skips finished cells, resumes partial ones and redoes corrupt ones."
)

REPRODUCE_HELP = "run the preset grids behind the README's results (one task or all)"

REPRODUCE_DESCRIPTION = (
    "Run the preset grid of a task (or of all of them) at quick scale (minutes per task "
    "on 2 CPU cores) or paper scale (a GPU or a cluster), into OUT/<task>/, and write "
    "OUT/results.md: one row per task, placement and training sigma, with the verdict."
)


def _grid_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="cells trained at once: local worker processes (1: this process), or the CPUs of "
        "the local Ray cluster started without --address (default: 1)",
    )
    parser.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local worker processes, or Ray tasks (pip install 'noise-preference[ray]')",
    )
    parser.add_argument(
        "--address", help="the Ray cluster to join (auto, ray://host:port); default: start one"
    )
    add_common_options(parser)


def _grid_run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``run_grid`` that ``_grid_options`` adds."""
    return {"workers": args.workers, "backend": args.backend, "address": args.address} | (
        run_options(args)
    )


def add_grid(commands: Any) -> None:
    """Add ``noisepref grid`` to the sub-command parsers ``commands``."""
    parser = add_command(commands, "grid", _grid, GRID_HELP, GRID_DESCRIPTION)
    parser.add_argument("spec", type=nonempty_path, help="the grid spec, a TOML file")
    parser.add_argument("--out", type=nonempty_path, required=True, help="the grid's output folder")
    _grid_options(parser)


def _grid(args: argparse.Namespace) -> int:
    from evaluation.grid import load_spec, run_grid

    if not args.spec.is_file():
        raise ValueError(f"{args.spec} is not a grid spec: no such file")
    check_output(args.out, "--out", folder=True)
    result = run_grid(
        load_spec(args.spec),
        args.out,
        **_grid_run_options(args),
    )
    print(result.settings_table())
    print(
        f"\n{len(result.ran)} cells run, {len(result.skipped)} already done, "
        f"{result.seconds:.0f} s; wrote {args.out / 'summary.csv'} and "
        f"{sum(p.suffix == '.png' for p in result.files)} figures"
    )
    return 0


def add_reproduce(commands: Any) -> None:
    """Add ``noisepref reproduce`` to the sub-command parsers ``commands``."""
    from evaluation.grid.presets import SCALES, preset_names

    parser = add_command(commands, "reproduce", _reproduce, REPRODUCE_HELP, REPRODUCE_DESCRIPTION)
    parser.add_argument(
        "task",
        choices=(*preset_names(), "all", "remedies"),
        help="the preset, or all; remedies: fixed-noise vs noise-distribution training vs "
        "recalibration on --remedies-tasks",
    )
    parser.add_argument(
        "--remedies-tasks",
        default="function_approx",
        help="with remedies: comma-separated presets to compare them on (default: function_approx)",
    )
    parser.add_argument("--scale", choices=SCALES, default="quick", help="(default: quick)")
    parser.add_argument(
        "--out",
        type=nonempty_path,
        default=Path("reproduce_output"),
        help="(default: reproduce_output)",
    )
    parser.add_argument(
        "--publish",
        type=nonempty_path,
        help="also copy each task's summary, settings and figures (not the run folders) into "
        "PUBLISH/<task>/ and write PUBLISH/results.md",
    )
    parser.add_argument(
        "--readme",
        type=nonempty_path,
        help="also write the results between the <!-- grid-results --> markers of this file",
    )
    _grid_options(parser)


def _reproduce(args: argparse.Namespace) -> int:
    from agents.atomic import atomic_write_text
    from evaluation.grid import run_grid
    from evaluation.grid.presets import preset, preset_names
    from evaluation.grid.report import publish, replace_section, results_markdown

    check_output(args.out, "--out", folder=True)
    if args.task == "remedies":
        return _reproduce_remedies(args)
    names = preset_names() if args.task == "all" else [args.task]
    if args.readme is not None and not args.readme.is_file():
        raise ValueError(f"`--readme` {args.readme} is not a file")
    results = {}
    for name in names:
        results[name] = run_grid(
            preset(name, args.scale),
            args.out / name,
            **_grid_run_options(args),
        )
        print(f"{name} ({results[name].seconds / 60:.1f} min)\n{results[name].settings_table()}\n")
    command = f"noisepref reproduce {args.task} --scale {args.scale}"
    home, files = args.out, None
    if args.publish is not None:
        home, files = args.publish, {n: publish(r, args.publish / n) for n, r in results.items()}
    for folder in dict.fromkeys((args.out, home)):
        section = results_markdown(
            results, scale=args.scale, figures_from=folder, command=command, files=files
        )
        atomic_write_text(folder / "results.md", section)
        print(f"wrote {folder / 'results.md'}")
    if args.readme is not None:
        relinked = results_markdown(
            results,
            scale=args.scale,
            figures_from=args.readme.parent,
            command=command,
            files=files,
        )
        text = replace_section(args.readme.read_text(encoding="utf-8"), relinked)
        atomic_write_text(args.readme, text)
        print(f"wrote the results section of {args.readme}")
    return 0


def _reproduce_remedies(args: argparse.Namespace) -> int:
    """``noisepref reproduce remedies``: :func:`evaluation.remedies.run_remedies` per task."""
    from agents.atomic import atomic_write_bytes, atomic_write_text
    from evaluation.remedies import SUMMARY_FILE, check_task, run_remedies

    tasks = [check_task(name.strip()) for name in args.remedies_tasks.split(",") if name.strip()]
    if args.readme is not None:
        raise ValueError("--readme applies to the grid presets; remedies write OUT/remedies.md")
    sections = []
    for task in tasks:
        result = run_remedies(
            task,
            args.out / f"remedies_{task}",
            scale=args.scale,
            **run_options(args),
        )
        print(f"{task} ({result.seconds / 60:.1f} min)\n{result.table()}\n")
        sections.append(f"### {task}\n\n" + (result.files[1]).read_text(encoding="utf-8"))
        if args.publish is not None:
            folder = args.publish / f"remedies_{task}"
            folder.mkdir(parents=True, exist_ok=True)
            for file in result.files:
                atomic_write_bytes(folder / file.name, file.read_bytes())
    command = (
        f"noisepref reproduce remedies --remedies-tasks {','.join(tasks)} --scale {args.scale}"
    )
    text = f"## Remedies\n\n`{command}`\n\n" + "\n".join(sections)
    for folder in dict.fromkeys(filter(None, (args.out, args.publish))):
        atomic_write_text(folder / SUMMARY_FILE, text)
        print(f"wrote {folder / SUMMARY_FILE}")
    return 0
