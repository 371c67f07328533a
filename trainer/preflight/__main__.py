"""`python -m trainer.preflight CONFIG [CONFIG ...] [--offline]` (also installed as
`st-finetune-preflight`)."""

from __future__ import annotations

from trainer.preflight.check import preflight


def _quiet_libraries() -> None:
    """Progress bars and library log lines would bury the problem list."""
    import logging

    import datasets

    datasets.disable_progress_bars()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    """`python -m trainer.preflight CONFIG [CONFIG ...]`: for each config, print every
    problem as `field: message`, then warnings and what could not be checked here, then a
    one-line verdict (and, for several configs, a last line over all of them).

    Exit status 0 when every config is ready to submit, 1 when one has problems, 2 when
    a check itself failed (a bug: `--debug` shows the traceback).
    """
    import argparse
    import json
    import os
    import sys

    parser = argparse.ArgumentParser(
        prog="st-finetune-preflight",
        description="Check run configs (data, evaluators, gate, Hub, output and "
        "checkpoint locations, training arguments, base model) without loading a model.",
    )
    parser.add_argument(
        "config", nargs="+", help="run config YAML (bare, or a ZenML run config); several allowed"
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="no network: Hub datasets and models missing from the local cache are "
        "reported as 'not checked', not as problems",
    )
    parser.add_argument("--json", action="store_true", help="print the report(s) as JSON")
    parser.add_argument("--debug", action="store_true", help="log details, show tracebacks")
    args = parser.parse_args(argv)
    if args.offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"
    if args.debug:
        import logging

        logging.basicConfig(level=logging.INFO)
    else:
        _quiet_libraries()
    status, reports = 0, []
    for config in args.config:
        try:
            report = preflight(config, offline=args.offline)
        except Exception as error:
            if args.debug:
                raise
            print(
                f"preflight could not finish for {config}: {type(error).__name__}: {error} "
                "(run again with --debug for the traceback)",
                file=sys.stderr,
            )
            status = 2
            continue
        reports.append(report)
        status = max(status, 0 if report.ok else 1)
        if args.json:
            continue
        if len(args.config) > 1:
            print(f"== {config}")
        for problem in report.problems:
            print(problem)
        for warning in report.warnings:
            print(f"warning: {warning}")
        for skipped in report.skipped:
            print(f"not checked: {skipped}")
        if args.debug:
            for checked in report.checked:
                print(f"checked: {checked}")
        print(report.verdict())
    if args.json:
        dumped = [report.model_dump(mode="json") for report in reports]
        print(json.dumps(dumped[0] if len(args.config) == 1 and dumped else dumped, indent=2))
    elif len(args.config) > 1:
        failed = sum(not report.ok for report in reports) + (len(args.config) - len(reports))
        unchecked = sum(report.unchecked_offline for report in reports)
        print(
            f"preflight {'OK' if status == 0 else 'FAILED'}: {len(args.config)} configs, "
            f"{failed} with problems"
            + (f", {unchecked} Hub sources not checked offline" if unchecked else "")
        )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
