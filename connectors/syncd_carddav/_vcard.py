"""vCard 3.0/4.0 cards as syncd sees them: mapped fields out, mapped fields in, the rest untouched.

A card is kept as vobject content lines in their *encoded* form (vobject unfolds lines and
parses names, groups and parameters); only the properties syncd maps are decoded and re-encoded.
vobject's own value decoding is not used for the whole card on purpose: it cuts unknown text
values at the first unescaped comma (a vCard 4.0 ``PHOTO:data:image/png;base64,...`` would lose
its data), and syncd must never drop what it does not map.

Mapped fields (paths for mapping files)::

    uid, fn, n.given, n.family, n.additional, n.prefix, n.suffix,
    email (primary), emails ([{"value", "types"}]), tel (primary), tels ([{"value", "types"}]),
    org (organisation name), title, adr.{street,locality,region,code,country,box,extended,types}
    (primary address), note, rev (read only: set to the write time on every write)

The primary EMAIL/TEL/ADR is the one marked preferred (``TYPE=pref`` in 3.0, lowest ``PREF`` in
4.0), else the first. Types are lower case and exclude ``pref``.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vobject.base import (
    ContentLine,
    ParseError,
    backslashEscape,
    defaultSerialize,
    getLogicalLines,
    parseLine,
)
from vobject.icalendar import stringToTextValues

N_PARTS = ("family", "given", "additional", "prefix", "suffix")
ADR_PARTS = ("box", "extended", "street", "locality", "region", "code", "country")
#: Every top-level field a card has (absent properties read as None or empty).
FIELDS = ("uid", "fn", "n", "email", "emails", "tel", "tels", "org", "title", "adr", "note", "rev")
_TEXT = {"fn": "FN", "title": "TITLE", "note": "NOTE", "uid": "UID"}
_MULTI = {"emails": "EMAIL", "tels": "TEL"}
_PRIMARY = {"email": "EMAIL", "tel": "TEL"}
_PRODID = "-//syncd//CardDAV connector//EN"


class VCardError(ValueError):
    """A card that cannot be read or a field value that cannot be written (no field values inside)."""


def _decode_text(line: ContentLine) -> str:
    raw = line.value
    encoding = [e.upper() for e in line.params.get("ENCODING", [])]
    if encoding and encoding[0] in ("B", "BASE64"):
        try:
            return base64.b64decode(raw).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise VCardError(f"{line.name}: undecodable base64 value") from None
    return ",".join(stringToTextValues(raw)) if isinstance(raw, str) else str(raw)


def _decode_parts(line: ContentLine, size: int) -> list[str]:
    """A structured value (N, ADR, ORG) as ``size`` unescaped components (lists joined by ',')."""
    parts = stringToTextValues(line.value, listSeparator=";", charList=";")
    out = [",".join(stringToTextValues(p)) for p in parts]
    return (out + [""] * size)[: max(size, len(out))]


def _encode_part(value: str) -> str:
    return backslashEscape(value)


def _types(line: ContentLine) -> list[str]:
    found: list[str] = []
    for value in line.params.get("TYPE", []):
        for one in value.split(","):
            one = one.strip().lower()
            if one and one != "pref" and one not in found:
                found.append(one)
    return found


def _pref_rank(line: ContentLine) -> int | None:
    """1..100 for a preferred property (lower is more preferred), None when unmarked."""
    if any(v.strip().lower() == "pref" for t in line.params.get("TYPE", []) for v in t.split(",")):
        return 1
    for value in line.params.get("PREF", []):
        if value.strip().isdigit():
            return int(value.strip())
    return None


def _clean(value: str | None) -> str | None:
    return value if value else None


def _text_input(path: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise VCardError(f"{path}: expected text, got {type(value).__name__}")
    return value.strip() or None


def _types_input(path: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not all(isinstance(t, str) for t in value):
        raise VCardError(f"{path}: types must be a list of strings")
    return [t.strip().lower() for t in value if t.strip() and t.strip().lower() != "pref"]


def parse_rev(value: str | None) -> datetime | None:
    """The REV timestamp as an aware datetime (basic or extended ISO 8601), None if unreadable."""
    if not value:
        return None
    text = value.strip()
    if "T" in text and "-" not in text.split("T", 1)[0] and len(text) >= 15:
        date, time = text.split("T", 1)
        zone = ""
        for mark in ("Z", "+", "-"):
            if mark in time:
                index = time.index(mark)
                time, zone = time[:index], time[index:]
                break
        if len(zone) == 5:
            zone = zone[:3] + ":" + zone[3:]
        text = f"{date[:4]}-{date[4:6]}-{date[6:8]}T{time[:2]}:{time[2:4]}:{time[4:6]}{time[6:]}{zone}"
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def format_rev(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _line(name: str, value: str, params: Mapping[str, list[str]] | None = None) -> ContentLine:
    line = ContentLine(name, {}, value, encoded=True)
    for key, values in (params or {}).items():
        line.params[key] = list(values)
    return line


@dataclass
class Card:
    """One vCard: its VERSION and its content lines (encoded, in order, BEGIN/END excluded)."""

    version: str
    lines: list[ContentLine] = field(default_factory=list)

    # -- reading ----------------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> Card:
        """Parse one vCard; raise VCardError for anything that is not exactly one vCard."""
        lines: list[ContentLine] = []
        try:
            for raw, number in getLogicalLines(io.StringIO(text)):
                if not raw.strip():
                    continue
                name, params, value, group = parseLine(raw, number)
                line = ContentLine(name, params, value, group, encoded=True, lineNumber=number)  # type: ignore[arg-type]  # the stubs say dict, vobject takes parseLine's list
                # vCard 2.1-style bare parameters (EMAIL;INTERNET:...) are TYPE values; vobject
                # would otherwise drop them when writing the line back.
                if line.singletonparams:
                    line.params.setdefault("TYPE", []).extend(line.singletonparams)
                    line.singletonparams = []
                lines.append(line)
        except ParseError as exc:
            raise VCardError(f"unparsable vCard line {getattr(exc, 'lineNumber', '?')}") from None
        if (
            len(lines) < 2
            or lines[0].name != "BEGIN"
            or str(lines[0].value).strip().upper() != "VCARD"
            or lines[-1].name != "END"
            or str(lines[-1].value).strip().upper() != "VCARD"
        ):
            raise VCardError("not a single BEGIN:VCARD ... END:VCARD block")
        body = lines[1:-1]
        if any(line.name in ("BEGIN", "END") for line in body):
            raise VCardError("nested or several vCards in one resource")
        versions = [str(line.value).strip() for line in body if line.name == "VERSION"]
        if len(versions) != 1:
            raise VCardError("a vCard needs exactly one VERSION")
        return cls(versions[0], body)

    def _all(self, name: str) -> list[ContentLine]:
        return [line for line in self.lines if line.name == name]

    def _first(self, name: str) -> ContentLine | None:
        return next((line for line in self.lines if line.name == name), None)

    def _primary(self, name: str) -> ContentLine | None:
        found = self._all(name)
        if not found:
            return None
        ranked = [(rank, i) for i, line in enumerate(found) if (rank := _pref_rank(line)) is not None]
        return found[min(ranked)[1]] if ranked else found[0]

    def _value(self, line: ContentLine) -> str:
        text = _decode_text(line)
        if line.name == "TEL" and text.lower().startswith("tel:"):
            return text[4:]
        return text

    def text(self, name: str) -> str | None:
        line = self._first(name)
        return _clean(self._value(line)) if line is not None else None

    @property
    def uid(self) -> str | None:
        return self.text("UID")

    def _entries(self, name: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for line in self._all(name):
            value = _clean(self._value(line))
            if value is not None:
                out.append({"value": value, "types": _types(line)})
        return out

    def fields(self) -> dict[str, Any]:
        """The mapped fields, always with every key (absent properties are None or empty)."""
        n_line = self._first("N")
        n_parts = _decode_parts(n_line, 5) if n_line is not None else [""] * 5
        adr_line = self._primary("ADR")
        adr_parts = _decode_parts(adr_line, 7) if adr_line is not None else [""] * 7
        adr: dict[str, Any] = {k: _clean(v) for k, v in zip(ADR_PARTS, adr_parts, strict=False)}
        adr["types"] = _types(adr_line) if adr_line is not None else []
        org_line = self._first("ORG")
        primary_email = self._primary("EMAIL")
        primary_tel = self._primary("TEL")
        return {
            "uid": self.uid,
            "fn": self.text("FN"),
            "n": {k: _clean(v) for k, v in zip(N_PARTS, n_parts, strict=False)},
            "email": _clean(self._value(primary_email)) if primary_email is not None else None,
            "emails": self._entries("EMAIL"),
            "tel": _clean(self._value(primary_tel)) if primary_tel is not None else None,
            "tels": self._entries("TEL"),
            "org": _clean(_decode_parts(org_line, 1)[0]) if org_line is not None else None,
            "title": self.text("TITLE"),
            "adr": adr,
            "note": self.text("NOTE"),
            "rev": self.text("REV"),
        }

    # -- writing ----------------------------------------------------------------------------------

    @classmethod
    def new(cls, version: str, uid: str) -> Card:
        card = cls(version, [_line("VERSION", version), _line("PRODID", _PRODID)])
        card._set_text("UID", uid)
        return card

    def serialise(self) -> str:
        out = io.StringIO()
        out.write("BEGIN:VCARD\r\n")
        for line in self.lines:
            defaultSerialize(line, out, 75)
        out.write("END:VCARD\r\n")
        return out.getvalue()

    def _insert_at(self, name: str) -> int:
        """Where a new ``name`` line goes: after the last of its kind, else before nothing (the end)."""
        last = max((i for i, line in enumerate(self.lines) if line.name == name), default=None)
        return last + 1 if last is not None else len(self.lines)

    def _encode_value(self, name: str, value: str, like: ContentLine | None = None) -> str:
        if name == "TEL" and like is not None and str(like.value).lower().startswith("tel:"):
            return "tel:" + value
        return backslashEscape(value)

    def _set_text(self, name: str, value: str | None) -> None:
        line = self._first(name)
        if value is None:
            if line is not None:
                self.lines.remove(line)
            return
        if line is None:
            self.lines.insert(self._insert_at(name), _line(name, backslashEscape(value)))
            return
        line.params.pop("ENCODING", None)
        line.value = self._encode_value(name, value, line)

    def _set_parts(self, name: str, size: int, changes: Mapping[int, str | None]) -> None:
        line = self._first(name) if name != "ADR" else self._primary(name)
        parts = _decode_parts(line, size) if line is not None else [""] * size
        # Components syncd does not change keep their encoding (lists, escapes) as the card had it.
        raw = (
            [p.replace(";", "\\;") for p in stringToTextValues(line.value, listSeparator=";", charList=";")]
            if line is not None
            else []
        )
        raw = (raw + [""] * size)[: len(parts)]
        for index, value in changes.items():
            parts[index] = value or ""
            raw[index] = _encode_part(value or "")
        if line is None:
            if not any(parts):
                return
            self.lines.insert(self._insert_at(name), _line(name, ";".join(raw)))
        else:
            line.value = ";".join(raw)

    def _set_primary(self, name: str, value: str | None) -> None:
        lines = self._all(name)
        primary = self._primary(name)
        if value is None:
            if primary is not None:
                self.lines.remove(primary)
            return
        same = [line for line in lines if self._value(line).strip().lower() == value.lower()]
        if same:
            self._make_primary(name, same[0])
            return
        if primary is None:
            self.lines.insert(self._insert_at(name), _line(name, self._encode_value(name, value)))
            return
        primary.params.pop("ENCODING", None)
        primary.value = self._encode_value(name, value, primary)

    def _make_primary(self, name: str, chosen: ContentLine) -> None:
        if self._primary(name) is chosen:
            return
        marked = [line for line in self._all(name) if _pref_rank(line) is not None]
        for line in marked:
            line.params.pop("PREF", None)
            if "TYPE" in line.params:
                kept = [t for t in _types(line) if t]
                if kept:
                    line.params["TYPE"] = kept
                else:
                    del line.params["TYPE"]
        if marked:
            if self.version.startswith("4"):
                chosen.params["PREF"] = ["1"]
            else:
                chosen.params["TYPE"] = [*_types(chosen), "pref"]
        # Unmarked cards take the first line as primary: move the chosen one ahead of the others.
        first = self.lines.index(self._all(name)[0])
        self.lines.remove(chosen)
        self.lines.insert(first, chosen)

    def _set_entries(self, name: str, path: str, entries: Any) -> None:
        if entries is None:
            entries = []
        if not isinstance(entries, Sequence) or isinstance(entries, str):
            raise VCardError(f"{path}: expected a list of {{value, types}} entries")
        old = self._all(name)
        by_value = {self._value(line).strip().lower(): line for line in reversed(old)}
        new_lines: list[ContentLine] = []
        for i, entry in enumerate(entries):
            if isinstance(entry, str):
                entry = {"value": entry}
            if not isinstance(entry, Mapping):
                raise VCardError(f"{path}[{i}]: expected text or a {{value, types}} entry")
            value = _text_input(f"{path}[{i}].value", entry.get("value"))
            if value is None:
                continue
            existing = by_value.pop(value.lower(), None)
            line = existing if existing is not None else _line(name, self._encode_value(name, value, None))
            if "types" in entry:
                types = _types_input(f"{path}[{i}].types", entry["types"])
                pref = existing is not None and any(
                    v.strip().lower() == "pref" for t in existing.params.get("TYPE", []) for v in t.split(",")
                )
                if types or pref:
                    line.params["TYPE"] = [*types, *(["pref"] if pref else [])]
                else:
                    line.params.pop("TYPE", None)
            new_lines.append(line)
        at = self.lines.index(old[0]) if old else self._insert_at(name)
        self.lines = [line for line in self.lines if line.name != name]
        at = min(at, len(self.lines))
        self.lines[at:at] = new_lines

    def apply(self, fields: Mapping[str, Any], *, creating: bool = False) -> None:
        """Write the given mapped fields into the card; every other property stays as it is."""
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise VCardError(f"unknown vCard field(s): {', '.join(sorted(unknown))}")
        if "uid" in fields and not creating:
            wanted = _text_input("uid", fields["uid"])
            if wanted is not None and wanted != self.uid:
                raise VCardError("uid: a card's UID cannot be changed")
        for key in ("emails", "tels"):
            if key in fields:
                self._set_entries(_MULTI[key], key, fields[key])
        for key, name in _PRIMARY.items():
            if key in fields:
                self._set_primary(name, _text_input(key, fields[key]))
        for key, name in _TEXT.items():
            if key in fields and key != "uid":
                self._set_text(name, _text_input(key, fields[key]))
        if "n" in fields:
            self._set_parts("N", 5, self._part_changes("n", N_PARTS, fields["n"]))
        if "adr" in fields:
            self._apply_adr(fields["adr"])
        if "org" in fields:
            org = _text_input("org", fields["org"])
            line = self._first("ORG")
            if org is None and line is not None and len(_decode_parts(line, 1)) <= 1:
                self.lines.remove(line)
            else:
                self._set_parts("ORG", 1, {0: org})
        self._ensure_required()
        self._set_text("REV", format_rev(datetime.now(UTC)))

    def _part_changes(self, path: str, names: Sequence[str], value: Any) -> dict[int, str | None]:
        if value is None:
            return dict.fromkeys(range(len(names)))
        if not isinstance(value, Mapping):
            raise VCardError(f"{path}: expected a table of {', '.join(names)}")
        unknown = set(value) - {*names, "types"}
        if unknown:
            raise VCardError(f"{path}: unknown part(s) {', '.join(sorted(unknown))}")
        return {names.index(k): _text_input(f"{path}.{k}", v) for k, v in value.items() if k != "types"}

    def _apply_adr(self, value: Any) -> None:
        changes = self._part_changes("adr", ADR_PARTS, value)
        self._set_parts("ADR", 7, changes)
        if isinstance(value, Mapping) and "types" in value:
            line = self._primary("ADR")
            types = _types_input("adr.types", value["types"])
            if line is not None:
                pref = _pref_rank(line) is not None and "PREF" not in line.params
                if types or pref:
                    line.params["TYPE"] = [*types, *(["pref"] if pref else [])]
                else:
                    line.params.pop("TYPE", None)

    def _ensure_required(self) -> None:
        """FN is mandatory (and N in vCard 3.0): derive FN from the name, org or email if missing."""
        if self.text("FN") is None:
            fields = self.fields()
            n = fields["n"]
            derived = " ".join(p for p in (n["prefix"], n["given"], n["additional"], n["family"]) if p)
            self._set_text("FN", derived or fields["org"] or fields["email"] or "")
            if self._first("FN") is None:
                self.lines.insert(self._insert_at("UID"), _line("FN", ""))
        if self.version.startswith("3") and self._first("N") is None:
            self.lines.insert(self._insert_at("FN"), _line("N", ";;;;"))


def iter_field_paths() -> Iterator[str]:
    """Every mapping path a card offers (for ``ObjectType.fields``)."""
    for name in FIELDS:
        if name == "n":
            yield from (f"n.{p}" for p in N_PARTS)
        elif name == "adr":
            yield from (f"adr.{p}" for p in (*ADR_PARTS, "types"))
        else:
            yield name


__all__ = ["FIELDS", "Card", "VCardError", "format_rev", "iter_field_paths", "parse_rev"]
