"""Row validation: every problem with its file, line and field."""

from __future__ import annotations

from typing import Any

from hardneg.errors import Problem


def _check_passages(
    row: dict[str, Any], key: str, path: str, line: int | None, problems: list[Problem]
) -> list[tuple[int, str]]:
    """Check one passage list; return (index, docid) of the passages that have a usable docid."""
    value = row.get(key)
    if value is None:
        if key == "negative_passages":
            return []
        problems.append(Problem(path, line, key, "missing"))
        return []
    if not isinstance(value, list):
        problems.append(Problem(path, line, key, f"expected a list, got {type(value).__name__}"))
        return []
    docids: list[tuple[int, str]] = []
    for i, passage in enumerate(value):
        where = f"{key}[{i}]"
        if not isinstance(passage, dict):
            problems.append(Problem(path, line, where, f"expected an object, got {type(passage).__name__}"))
            continue
        docid = passage.get("docid")
        if docid is None or (isinstance(docid, str) and not docid.strip()):
            problems.append(Problem(path, line, f"{where}.docid", "missing or empty"))
        elif not isinstance(docid, (str, int)):
            problems.append(Problem(path, line, f"{where}.docid", f"expected a string, got {type(docid).__name__}"))
        else:
            docids.append((i, str(docid)))
        text = passage.get("text")
        if text is None:
            problems.append(Problem(path, line, f"{where}.text", "missing"))
        elif not isinstance(text, str):
            problems.append(Problem(path, line, f"{where}.text", f"expected a string, got {type(text).__name__}"))
        elif not text.strip():
            problems.append(Problem(path, line, f"{where}.text", "empty text"))
        title = passage.get("title")
        if title is not None and not isinstance(title, str):
            problems.append(Problem(path, line, f"{where}.title", f"expected a string, got {type(title).__name__}"))
    return docids


def check_row(row: Any, path: str, line: int | None) -> list[Problem]:
    """Problems of one Tevatron row (empty list when the row is valid)."""
    if not isinstance(row, dict):
        return [Problem(path, line, "-", f"expected a JSON object, got {type(row).__name__}")]
    problems: list[Problem] = []
    query_id = row.get("query_id")
    if query_id is None or (isinstance(query_id, str) and not query_id.strip()):
        problems.append(Problem(path, line, "query_id", "missing or empty"))
    elif not isinstance(query_id, (str, int)):
        problems.append(Problem(path, line, "query_id", f"expected a string, got {type(query_id).__name__}"))
    query = row.get("query")
    if query is None:
        problems.append(Problem(path, line, "query", "missing"))
    elif not isinstance(query, str):
        problems.append(Problem(path, line, "query", f"expected a string, got {type(query).__name__}"))
    elif not query.strip():
        problems.append(Problem(path, line, "query", "empty text"))
    subset = row.get("subset")
    if subset is not None and not isinstance(subset, str):
        problems.append(Problem(path, line, "subset", f"expected a string, got {type(subset).__name__}"))
    positive_ids = _check_passages(row, "positive_passages", path, line, problems)
    negative_ids = _check_passages(row, "negative_passages", path, line, problems)
    if isinstance(row.get("positive_passages"), list) and not row["positive_passages"]:
        problems.append(Problem(path, line, "positive_passages", "instance has no positives"))
    for key, ids in (("positive_passages", positive_ids), ("negative_passages", negative_ids)):
        first: dict[str, int] = {}
        for i, docid in ids:
            if docid in first:
                problems.append(
                    Problem(path, line, f"{key}[{i}].docid", f"duplicate docid {docid!r} (also {key}[{first[docid]}])")
                )
            else:
                first[docid] = i
    positive_at = {docid: i for i, docid in reversed(positive_ids)}
    for i, docid in negative_ids:
        if docid in positive_at:
            problems.append(
                Problem(
                    path,
                    line,
                    f"negative_passages[{i}].docid",
                    f"docid {docid!r} is also a positive (positive_passages[{positive_at[docid]}])",
                )
            )
    return problems
