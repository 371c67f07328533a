"""`python -m trainer.preflight CONFIG` (also installed as `st-finetune-preflight`)."""

from __future__ import annotations

from trainer.preflight.check import preflight


def _quiet_libraries() -> None:
    """Progress bars and library log lines would bury the problem list."""
    import logging

    import datasets

    datasets.disable_progress_bars()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    """`python -m trainer.preflight CONFIG`: print every problem as `field: message`,
    then warnings and what could not be checked here, then a one-line verdict.

    Exit status 0 when the config is ready to submit, 1 when it has problems, 2 when
    the check itself failed (a bug: `--debug` shows the traceback).
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="st-finetune-preflight",
        description="Check a run config (data, evaluators, gate, Hub, output and "
        "checkpoint locations, training arguments, base model) without loading a model.",
    )
    parser.add_argument("config", help="run config YAML (bare, or a ZenML run config)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--debug", action="store_true", help="log details, show tracebacks")
    args = parser.parse_args(argv)
    if args.debug:
        import logging

        logging.basicConfig(level=logging.INFO)
    else:
        _quiet_libraries()
    try:
        report = preflight(args.config)
    except Exception as error:
        if args.debug:
            raise
        print(
            f"preflight could not finish: {type(error).__name__}: {error} "
            "(run again with --debug for the traceback)",
            file=sys.stderr,
        )
        return 2
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
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
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
