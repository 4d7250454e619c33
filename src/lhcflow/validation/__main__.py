"""``python -m lhcflow.validation RESULTS_DIR``: the thesis-comparison report of one run."""

from __future__ import annotations

import argparse
import sys

from lhcflow.validation import validate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lhcflow.validation", description=__doc__)
    parser.add_argument("results_dir", help="a run's results directory, e.g. results/default")
    parser.add_argument("--json", help="output JSON (default RESULTS_DIR/validation/validation.json)")
    parser.add_argument("--html", help="output HTML (default RESULTS_DIR/validation/validation.html)")
    args = parser.parse_args(argv)
    try:
        payload = validate(args.results_dir, json_path=args.json, html_path=args.html)
    except (FileNotFoundError, ValueError, KeyError) as err:
        print(f"lhcflow.validation: {err}", file=sys.stderr)
        return 2
    counts = payload["summary"]
    print(", ".join(f"{n} {status}" for status, n in counts.items()))
    for row in payload["rows"]:
        if row["status"] == "fail":
            print(f"  fail: {row['chain']} / {row['group']}: {row['quantity']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
