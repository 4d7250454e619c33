"""``python -m lhcflow.validation RESULTS_DIR``: the thesis-comparison report of one run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lhcflow.validation import validate
from lhcflow.validation.report import markdown_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lhcflow.validation", description=__doc__)
    parser.add_argument("results_dir", help="a run's results directory, e.g. results/default")
    parser.add_argument("--json", help="output JSON (default RESULTS_DIR/validation/validation.json)")
    parser.add_argument("--html", help="output HTML (default RESULTS_DIR/validation/validation.html)")
    parser.add_argument("--markdown", metavar="PATH",
                        help="also write the table as Markdown (for the README); '-' prints it")
    args = parser.parse_args(argv)
    try:
        payload = validate(args.results_dir, json_path=args.json, html_path=args.html)
    except (FileNotFoundError, ValueError, KeyError) as err:
        print(f"lhcflow.validation: {err}", file=sys.stderr)
        return 2
    if args.markdown:
        text = markdown_table(payload)
        if args.markdown == "-":
            print(text)
        else:
            Path(args.markdown).write_text(text)
    counts = payload["summary"]
    print(", ".join(f"{n} {status}" for status, n in counts.items()))
    for row in payload["rows"]:
        if row["status"] == "fail":
            print(f"  fail: {row['chain']} / {row['group']}: {row['quantity']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
