"""Write the command reference in docs/commands.md from the command table.

    .venv/bin/python scripts/commands_doc.py          # rewrite the table in the doc
    .venv/bin/python scripts/commands_doc.py --check  # exit 1 when the doc is out of date

Only the part between the two markers is written; the prose around it is the doc's own.
tests/test_commands.py fails when the doc and the table disagree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ambiance.core import commands

DOC = Path(__file__).resolve().parent.parent / "docs" / "commands.md"
BEGIN = "<!-- commands: made by scripts/commands_doc.py from ambiance/core/commands.py -->"
END = "<!-- commands: end -->"
ROOM = "/rooms/{room}"


def _argument(name: str, schema: dict[str, Any], required: bool) -> str:
    kinds = [s.get("type") for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    facts = ["/".join(str(k) for k in kinds)]
    for key, sign in (
        ("exclusiveMinimum", ">"),
        ("minimum", "≥"),
        ("exclusiveMaximum", "<"),
        ("maximum", "≤"),
    ):
        for part in schema.get("anyOf", [schema]):
            if key in part:
                facts.append(f"{sign} {part[key]}")
    for part in schema.get("anyOf", [schema]):
        if "pattern" in part:
            facts.append(f"matches `{part['pattern']}`")
        if "enum" in part:
            facts.append("one of " + ", ".join(f"`{value}`" for value in part["enum"]))
    if required:
        facts.append("required")
    elif schema.get("default") is not None:
        facts.append(f"default {schema['default']}")
    return f"`{name}` ({', '.join(facts)})"


def _arguments(command: commands.Command[Any]) -> str:
    schema = command.args.model_json_schema()
    required = set(schema.get("required", []))
    shown = [
        _argument(name, field, name in required)
        for name, field in schema.get("properties", {}).items()
    ]
    return "<br>".join(shown) or "none"


def _rest(command: commands.Command[Any]) -> str:
    routes = []
    for rest in command.rest:
        path = rest.path.replace("{action}", command.name)
        notes = [str(rest.status)] if rest.status != 200 else []
        if rest.optional_body:
            notes.append("body optional")
        routes.append(f"`{rest.method} {ROOM}{path}`" + (f" ({', '.join(notes)})" if notes else ""))
    return "<br>".join(routes) or "—"


def _mqtt(command: commands.Command[Any]) -> str:
    example: dict[str, Any] = {"action": command.name}
    for name, field in command.args.model_fields.items():
        if field.examples:
            example[name] = field.examples[0]
    forms = [f"`{json.dumps(example)}`"]
    if command.takes_bare_word:
        forms.insert(0, f"`{command.name}`")
    return " or ".join(forms)


def _home_assistant(command: commands.Command[Any]) -> str:
    buttons = command.all_buttons
    if not buttons:
        return ""
    names = ", ".join(f"“{button.name}”" for button in buttons)
    return f"button{'s' if len(buttons) > 1 else ''} {names}"


def render() -> str:
    """The reference table, as it goes between the markers."""
    columns = ["Command", "What it does", "Arguments", "REST", "MQTT", "Home Assistant"]
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for command in commands.table():
        cells = [
            f"`{command.name}`",
            command.doc,
            _arguments(command),
            _rest(command),
            _mqtt(command),
            _home_assistant(command),
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def written(text: str) -> str:
    """The doc's text with the table as the command table has it now."""
    before, rest = text.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    return f"{before}{BEGIN}\n{render()}{END}{after}"


def main(argv: list[str]) -> int:
    text = DOC.read_text(encoding="utf-8")
    new = written(text)
    if "--check" in argv:
        if new != text:
            print(f"{DOC} is out of date: run scripts/commands_doc.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
