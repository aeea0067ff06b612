"""The command line: the same engine as the app.

    python -m imbagan train --dataset mnist --imbalance step --ir 100 --method bagan --steps 3000
    python -m imbagan runs | stop RUN | resume RUN | extend RUN --steps N | balance RUN | evaluate RUN
    python -m imbagan reproduce --list | reproduce NAME [--budget quick|paper] [--jobs N] [--ray ADDRESS]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import traceback
import types
import typing
from pathlib import Path

from imbagan import catalog, runs
from imbagan.config import CHOICES, FIELD_HELP, TrainConfig, measured_defaults


def choices_metavar(choices) -> str | None:
    """argparse lists choices joined by commas, so DiffAugment's policies ("color,translation,cutout",
    "translation") read as one jumble; where a choice holds a comma they are joined by "|" instead."""
    return "{" + "|".join(map(str, choices)) + "}" if any("," in str(c) for c in choices) else None


def _add_config_args(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, typed and documented from the dataclass itself."""
    hints = typing.get_type_hints(TrainConfig)
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        if f.name == "options":
            continue  # one flag per setting instead, below
        flag = "--" + f.name.replace("_", "-")
        hint, default = hints[f.name], getattr(defaults, f.name)
        help_ = f"{FIELD_HELP.get(f.name, '')} (default: {default})"
        args = typing.get_args(hint)
        if f.name == "method":
            p.add_argument(flag, choices=catalog.method_names(), default=None, help=help_)
        elif f.name in CHOICES:
            p.add_argument(flag, choices=CHOICES[f.name], default=None, help=help_,
                           metavar=choices_metavar(CHOICES[f.name]))
        elif hint is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_)
        elif typing.get_origin(hint) is tuple:
            p.add_argument(flag, type=int, nargs="*", default=None, metavar="N", help=help_)
        elif isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            inner = next(a for a in args if a is not type(None))
            p.add_argument(flag, type=inner, default=None, help=help_)
        else:
            p.add_argument(flag, type=hint, default=None, help=help_)
    owners: dict[str, list[str]] = {}
    for key, c in catalog.methods().items():
        for name in c.settings:
            owners.setdefault(name, []).append(key)
    for name, spec in catalog.setting_specs().items():  # the methods' own settings, from their cards
        flag, default = "--" + name.replace("_", "-"), spec["default"]
        help_ = f"{', '.join(owners[name])}: {spec.get('help', '')} (default: {default})"
        if "choices" in spec:
            p.add_argument(flag, choices=spec["choices"], default=None, help=help_,
                           metavar=choices_metavar(spec["choices"]))
        elif isinstance(default, tuple):
            p.add_argument(flag, type=int, nargs="*", default=None, metavar="N", help=help_)
        else:
            p.add_argument(flag, type=type(default), default=None, help=help_)


def _config_from_args(a: argparse.Namespace) -> TrainConfig:
    """Defaults, then the chosen method's paper settings, then its named preset (--preset), then the flags."""
    method = a.method or TrainConfig.method
    card = catalog.card(method) if method in catalog.method_names() else None
    preset = getattr(a, "preset", None)
    if card is None and preset:
        raise ValueError(f"Unknown method {method!r}; choose one of {', '.join(catalog.method_names())}.")
    kw = {}
    if card is not None:
        # A flag for another method's setting is refused, before anything is built.
        given = [n for n in catalog.setting_specs() if getattr(a, n, None) is not None]
        if foreign := [n for n in given if n not in card.settings]:
            raise ValueError(f"{', '.join('--' + n.replace('_', '-') for n in foreign)}: not a setting of {method}; "
                             f"its settings: {', '.join(card.settings) or 'none'}.")
        # the paper's settings and, unless --steps says otherwise, the measured budget of the dataset's family
        kw.update(measured_defaults(method, {k: getattr(a, k, None) for k in ("dataset", "image_size", "channels")
                                             if getattr(a, k, None) is not None}))
        if preset:
            if preset not in card.presets:
                raise ValueError(f"{method} has no preset {preset!r}; its presets: "
                                 f"{', '.join(card.presets) or 'none'}.")
            kw.update(card.presets[preset])
    for name in [f.name for f in dataclasses.fields(TrainConfig)] + list(catalog.setting_specs()):
        v = getattr(a, name, None)
        if v is not None:
            kw[name] = tuple(v) if isinstance(v, list) else v
    return TrainConfig.from_dict(kw)


def _fmt_run(r: runs.RunInfo) -> str:
    st, c = r.status, r.config
    prog = f"{st.get('step') or 0}/{st.get('total') or '?'}"
    extra = f"  {st.get('error')}" if r.state in ("failed", runs.UNREADABLE) and st.get("error") else ""
    if parent := runs.continues(r.dir):  # an extended run (`extend`): which run, from which step
        extra += f"  (continues {parent['run']} from step {parent.get('step') or 0:,})"
    return f"{r.id:48s} {r.state:8s} {prog:>11s}  {c.get('method')} {c.get('dataset')} {c.get('imbalance')}{extra}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m imbagan", description="Balance an imbalanced image dataset with a GAN.")
    ap.add_argument("--runs", default=None, help="folder of runs (default: $IMBAGAN_RUNS or ./runs)")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("train", help="create a run and train it (in the foreground unless --background)",
                       description="Create a run directory and train a balancing GAN into it.")
    _add_config_args(p)
    presets = sorted({n for c in catalog.methods().values() for n in c.presets})
    p.add_argument("--preset", default=None, metavar="NAME",
                   help="a method's named preset, applied over its paper defaults (e.g. acgan: "
                        + "; ".join(f"'{n}'" for n in presets) + ")")
    p.add_argument("--background", action="store_true", help="launch the worker in the background and print the run id")

    sub.add_parser("runs", help="list runs with state and progress", description="List runs, newest first.")
    for name, text in (("stop", "stop a running run (it checkpoints first)"),
                       ("resume", "continue a stopped or failed run from its last checkpoint"),
                       ("show", "print a run's status and the tail of its log")):
        q = sub.add_parser(name, help=text, description=text)
        q.add_argument("run", help="run id (see `runs`)")
    text = "train a finished or stopped run further, as a new run that starts from its checkpoint"
    q = sub.add_parser("extend", help=text, description=text + "; the run itself is kept as it is.")
    q.add_argument("run", help="run id (see `runs`)")
    q.add_argument("--steps", type=int, required=True, help="adversarial steps in all (more than the run's)")
    q = sub.add_parser("balance", help="write the balanced dataset (.npz) of a trained run",
                       description="Top every class up to the largest with generated images; writes RUN/balanced.npz.")
    q.add_argument("run")
    q.add_argument("--out", default=None, help="output .npz path (default: RUN_DIR/balanced.npz)")
    q.add_argument("--zip", action="store_true", help="also write the set as a .zip of PNGs in class folders")
    q = sub.add_parser("evaluate", help="evaluate classifiers before/after balancing for a run",
                       description="Train classifiers on the imbalanced, baseline-balanced and GAN-balanced sets; write RUN_DIR/eval/.")
    q.add_argument("run", help="run id or run directory")
    from imbagan import evalconfig

    evalconfig.add_arguments(q)
    q = sub.add_parser("reproduce", help="reproduce a paper's table by name, under its protocol and an honest one",
                       description="Train, probe and evaluate every cell of a paper's table (see --list); "
                                   "re-running skips finished cells.")
    from imbagan.reproduce import cli as _reproduce

    _reproduce.add_arguments(q)
    q = sub.add_parser("worker", help=argparse.SUPPRESS, description="(internal) the background training process")
    q.add_argument("dir")
    q.add_argument("--resume", action="store_true")

    a = ap.parse_args(argv)
    try:
        return _dispatch(a)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`runs | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        return 141
    except Exception as e:  # unexpected: one sentence here, the traceback in a log
        log = _error_log(a)
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a") as f:
                f.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} python -m imbagan {a.cmd}\n")
                traceback.print_exc(file=f)
            where = f" (the traceback is in {log})"
        except OSError:
            where = ""
        print(f"error: {_sentence(a, e)}{where}", file=sys.stderr)
        return 1


def _error_log(a: argparse.Namespace) -> Path:
    """Where an unexpected error's traceback goes: the run's log when the command names a run."""
    run = getattr(a, "run", None)
    if run:
        try:
            d = _resolve(run, a.runs)
            return d / "eval" / "log.txt" if a.cmd == "evaluate" else d / "log.txt"
        except (ValueError, OSError):
            pass
    return runs.runs_root(a.runs) / "cli-errors.log"


def _sentence(a: argparse.Namespace, e: Exception) -> str:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
    if a.cmd in ("balance", "evaluate") and isinstance(e, (RuntimeError, KeyError, IndexError, TypeError)):
        return (f"the run's checkpoint does not fit its configuration ({type(e).__name__}: {first}); "
                "it may come from another method, size or version: train or resume the run again.")
    return runs.error_text(e) if isinstance(e, OSError) else f"{type(e).__name__}: {first}"


def _resolve(run: str, root) -> Path:
    p = Path(run)
    if (p / "config.json").is_file():
        return p
    return runs.run_dir(run, root)


def _check_data(cfg: TrainConfig) -> None:
    """Load the run's training split and resolve its device once, so that bad data fails before a run exists.

    Errors become ValueError sentences (main prints them as one line).
    """
    from imbagan.batches import resolve_device
    from imbagan.splits import load_split

    resolve_device(cfg.device)
    try:
        load_split(cfg, "train")
    except (ValueError, FileNotFoundError):
        raise
    except OSError as e:
        raise ValueError(f"Could not read the data: {runs.error_text(e)}") from e


def _dispatch(a: argparse.Namespace) -> int:
    from imbagan import train

    if a.cmd == "worker":
        return train.worker_main(Path(a.dir), resume=a.resume)
    if a.cmd == "train":
        cfg = _config_from_args(a)
        from imbagan import budgets

        text, below = budgets.note(cfg.method, cfg.dataset, cfg.steps, cfg.image_size, cfg.channels)
        print(("warning: " if below else "") + text, file=sys.stderr if below else sys.stdout)
        if a.background:
            _check_data(cfg)
            print(runs.start(cfg, a.runs))
            return 0
        _check_data(cfg)  # a data error is one line here, before any run directory exists
        d = runs.create(cfg, a.runs)
        print(f"run {d.name} in {d}")
        return train.worker_main(d, foreground=True)
    if a.cmd == "runs":
        rs = runs.list_runs(a.runs)
        if not rs:
            print(f"no runs in {runs.runs_root(a.runs)}")
        for r in rs:
            print(_fmt_run(r))
        return 0
    if a.cmd == "stop":
        st = runs.stop(a.run, a.runs)
        print(f"{a.run}: {st.get('state')} at step {st.get('step')}")
        return 0
    if a.cmd == "resume":
        runs.resume(a.run, a.runs)
        print(f"{a.run}: resumed in the background")
        return 0
    if a.cmd == "extend":
        new = runs.extend(a.run, a.steps, a.runs)
        print(f"{new}: continues {a.run} to {a.steps:,} adversarial steps, in the background")
        return 0
    if a.cmd == "show":
        r = runs.info(a.run, a.runs)
        print(_fmt_run(r))
        print(runs.log_tail(r.dir))
        return 0
    if a.cmd == "balance":
        from imbagan import generate

        t = time.perf_counter()
        out = generate.balanced_dataset(_resolve(a.run, a.runs), a.out)
        print(f"wrote {out} in {time.perf_counter() - t:.1f} s")
        if a.zip:
            print(f"wrote {generate.balanced_zip(out)}")
        return 0
    if a.cmd == "evaluate":
        from imbagan import evalconfig, evaluate

        d, cfg = _resolve(a.run, a.runs), evalconfig.config_from_args(a)
        if a.background:
            evaluate.start_evaluation(d, cfg)
            print(f"evaluating {d.name} in the background; see {d / 'eval' / 'log.txt'}")
            return 0
        return evaluate.worker_main(d, cfg, log_file=not a.no_log_file)
    if a.cmd == "reproduce":
        from imbagan.reproduce import cli

        return cli.run(a)
    raise AssertionError(a.cmd)


if __name__ == "__main__":
    sys.exit(main())
