"""Every transform: normalisation, formats, and the rule that odd values are never lost."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.mapping.compiled import canonical_form
from syncd.mapping.transforms import (
    MISSING,
    TRANSFORMS,
    Step,
    TransformArgumentError,
    _email,
    _email_validated,
    compile_step,
    yields_bool,
)


def t(name: str, arg: Any = MISSING) -> Step:
    return compile_step(name, arg)


# --- text --------------------------------------------------------------------------------------


def test_trim_strips_whitespace_including_non_breaking_spaces() -> None:
    assert t("trim")("  Ann\u00a0\t") == "Ann"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("lower", "ÄNN Smith", "änn smith"),
        ("upper", "us", "US"),
        ("title", "ann-marie o'neil", "Ann-Marie O'Neil"),
        ("title", "McDONALD", "Mcdonald"),
        ("collapse_whitespace", "  Ann \n  Marie\t", "Ann Marie"),
    ],
)
def test_text_transforms(name: str, value: str, expected: str) -> None:
    assert t(name)(value) == expected


@pytest.mark.parametrize("name", ["trim", "lower", "upper", "title", "collapse_whitespace", "email", "e164"])
def test_text_transforms_leave_non_text_values_unchanged(name: str) -> None:
    step = t(name)
    for value in (None, 42, 3.5, True, {"a": "B"}):
        assert step(value) == value


def test_text_transforms_apply_to_each_item_of_a_list() -> None:
    assert t("lower")(["VIP", "Beta", 3]) == ["vip", "beta", 3]
    assert t("trim")((" a ", "b ")) == ["a", "b"]


# --- phone -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+1 (415) 555-0100", "+14155550100"),
        ("  +44 20 7946 0958 ", "+442079460958"),
        ("+14155550100", "+14155550100"),
    ],
)
def test_e164_formats_international_numbers_without_a_region(value: str, expected: str) -> None:
    assert t("e164")(value) == expected


def test_e164_leaves_national_numbers_as_text_without_a_region() -> None:
    assert t("e164")(" (415) 555-0100 ") == "(415) 555-0100"


@pytest.mark.parametrize(
    ("region", "value", "expected"),
    [
        ("US", "(415) 555-0100", "+14155550100"),
        ("us", "415.555.0100", "+14155550100"),
        ("GB", "020 7946 0958", "+442079460958"),
        ("DE", "030 901820", "+4930901820"),
        ("US", "+44 20 7946 0958", "+442079460958"),
    ],
)
def test_e164_uses_the_default_region_for_national_numbers(region: str, value: str, expected: str) -> None:
    assert t("e164", region)(value) == expected


@pytest.mark.parametrize("value", ["call me maybe", "12", "+1 415-555-0100 ext. 12"])
def test_e164_never_loses_an_unparseable_number_or_an_extension(value: str) -> None:
    assert t("e164", "US")(f"  {value} ") == value


def test_e164_rejects_an_unknown_region_with_a_suggestion() -> None:
    with pytest.raises(TransformArgumentError, match="unknown region 'USA' — did you mean 'US'"):
        t("e164", "USA")


# --- email -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        "ann@example.com",
        "  Ann@Example.COM ",
        "ANN@EXAMPLE.COM",
        "\u00a0ann@example.com\t",
        "ＡＮＮ＠ＥＸＡＭＰＬＥ．ＣＯＭ",  # full-width forms, folded by NFKC
        "ann\u200b@example.com",  # zero-width space pasted from a web page
        "\ufeffann@example.com",  # byte-order mark at the start of a CSV cell
    ],
)
def test_email_variants_normalise_to_one_address(variant: str) -> None:
    assert t("email")(variant) == "ann@example.com"


def test_email_composes_unicode_so_decomposed_and_composed_forms_match() -> None:
    decomposed = "Ju\u0308rgen@Exa\u0308mple.de"
    assert t("email")(decomposed) == t("email")("Jürgen@Exämple.de") == "jürgen@exämple.de"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(" Not An Email ", "not an email"), ("ANN@@X", "ann@@x"), ("ann@localhost", "ann@localhost")],
)
def test_email_keeps_invalid_addresses_as_cleaned_text(value: str, expected: str) -> None:
    assert t("email")(value) == expected


_ATOM = st.text(alphabet="aZ09.-_+!#$%&'*/=?^`{|}~ @\t", min_size=1, max_size=12)
_LABEL = st.sampled_from(["example", "Ex-Ample", "xn--bcher-kva", "-bad", "a", "test", "com", "c0m", ""])


@settings(max_examples=400, deadline=None)
@given(local=_ATOM, labels=st.lists(_LABEL, min_size=0, max_size=4), pad=st.sampled_from(["", " ", "\t"]))
def test_email_shortcut_for_plain_ascii_gives_what_full_validation_gives(
    local: str, labels: list[str], pad: str
) -> None:
    # The cached transform skips the validator for plain ASCII addresses: it must not change
    # any address's canonical form (valid, invalid, IDNA or reserved domains alike).
    text = f"{pad}{local}@{'.'.join(labels)}{pad}"
    assert _email(text) == _email_validated(text)


@pytest.mark.parametrize(
    "text",
    [
        "P1@Example.com",
        " a.b+c@sub.ex-ample.org ",
        "a@xn--bcher-kva.example",
        "a@b.test",
        "a..b@x.com",
        "a@1.2.3.4",
    ],
)
def test_email_shortcut_matches_full_validation_on_known_shapes(text: str) -> None:
    assert _email(text) == _email_validated(text)


# --- dates -------------------------------------------------------------------------------------


def test_date_reformats_between_explicit_formats() -> None:
    step = t("date", {"input": "%m/%d/%Y", "output": "%Y-%m-%d"})
    assert step("01/31/2024") == "2024-01-31"
    assert step(" 7/4/2023 ") == "2023-07-04"


def test_date_tries_each_input_format_in_order() -> None:
    step = t("date", {"input": ["%d.%m.%Y", "iso"], "output": "%m/%d/%Y"})
    assert step("31.01.2024") == "01/31/2024"
    assert step("2024-01-31T23:59:00+05:00") == "01/31/2024"


def test_date_leaves_unparseable_values_unchanged() -> None:
    step = t("date", {"input": "%m/%d/%Y"})
    assert step("31/01/2024") == "31/01/2024"
    assert step("soon") == "soon"
    assert step(None) is None


def test_date_reads_and_writes_epoch_milliseconds_at_midnight_utc() -> None:
    assert t("date", {"input": "epoch_ms"})("1572480000000") == "2019-10-31"
    assert t("date", {"input": "epoch_ms"})(1572480000000) == "2019-10-31"
    assert t("date", {"input": "iso", "output": "epoch_ms"})("2019-10-31") == 1572480000000


def test_date_accepts_date_objects_from_sql_drivers() -> None:
    assert t("date")(date(2024, 1, 31)) == "2024-01-31"
    assert t("date", {"output": "%d/%m/%Y"})(datetime(2024, 1, 31, 8, 0)) == "31/01/2024"


def test_datetime_defaults_to_iso_8601_in_utc() -> None:
    step = t("datetime")
    assert step("2024-01-31T14:34:56+02:00") == "2024-01-31T12:34:56Z"
    assert step("2024-01-31 12:34:56") == "2024-01-31T12:34:56Z"  # no offset: taken as UTC
    assert step(datetime(2024, 1, 31, 12, 34, 56, tzinfo=UTC)) == "2024-01-31T12:34:56Z"


def test_datetime_accepts_epoch_milliseconds_as_number_or_text() -> None:
    step = t("datetime", {"input": "epoch_ms"})
    assert step(1706704496000) == "2024-01-31T12:34:56Z"
    assert step("1706704496123") == "2024-01-31T12:34:56.123Z"
    assert step("not a time") == "not a time"
    assert step(True) is True


def test_datetime_writes_epoch_and_custom_formats() -> None:
    assert t("datetime", {"output": "epoch_ms"})("2024-01-31T12:34:56Z") == 1706704496000
    assert t("datetime", {"output": "epoch"})("2024-01-31T12:34:56Z") == 1706704496
    custom = t("datetime", {"input": "%d/%m/%Y %H:%M", "output": "%Y-%m-%d %H:%M"})
    assert custom("31/01/2024 12:34") == "2024-01-31 12:34"


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ({"input": "MM/DD/YYYY"}, "date input 'MM/DD/YYYY' has no % directive"),
        ({"input": "%Y-%Q"}, "date input '%Y-%Q' is not a valid strftime format"),
        ({"input": "%Y", "outptu": "%Y"}, "date: unknown option 'outptu' — did you mean 'output'?"),
        ({"input": []}, "date input must name at least one format"),
        ("%Y-%m-%d", "date expects a table such as"),
        ({"input": "isoo"}, "has no % directive — did you mean 'iso'?"),
    ],
)
def test_date_rejects_bad_formats(arg: Any, message: str) -> None:
    with pytest.raises(TransformArgumentError, match=message.replace("?", r"\?")):
        t("date", arg)


# --- maps --------------------------------------------------------------------------------------


def test_map_replaces_known_values_and_passes_others_through() -> None:
    step = t("map", {"active": "customer", "trial": "lead"})
    assert step("active") == "customer"
    assert step("paused") == "paused"
    assert step(None) is None


def test_map_default_replaces_unmapped_values_but_not_empty_ones() -> None:
    step = t("map", {"values": {"subscribed": True}, "default": False})
    assert step("subscribed") is True
    assert step("cleaned") is False
    assert step(None) is None
    assert step("") == ""


def test_map_looks_up_booleans_and_numbers_by_their_text() -> None:
    step = t("map", {"true": "subscribed", "false": "unsubscribed", "1": "one"})
    assert step(True) == "subscribed"
    assert step(False) == "unsubscribed"
    assert step(1) == "one"


def test_map_applies_to_each_item_of_a_list() -> None:
    assert t("map", {"vip": "VIP"})(["vip", "new"]) == ["VIP", "new"]


def test_map_may_have_a_key_named_values_when_it_is_not_a_table() -> None:
    assert t("map", {"values": "many", "one": "single"})("values") == "many"


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ({}, "map expects a non-empty table"),
        ({"values": {}}, "the values table is empty"),
        ({"gold": {"tier": 1}}, "value for 'gold' must be a string, number or boolean"),
        ({"values": {"a": "b"}, "defualt": "x"}, "unknown option 'defualt' — did you mean 'default'"),
        ({"values": {"a": "b"}, "default": [1]}, "default must be a string, number or boolean"),
        ("active", "map expects a non-empty table"),
    ],
)
def test_map_rejects_malformed_tables(arg: Any, message: str) -> None:
    with pytest.raises(TransformArgumentError, match=message):
        t("map", arg)


# --- lists and names ---------------------------------------------------------------------------


def test_split_trims_items_and_drops_empty_ones() -> None:
    assert t("split", ";")(" vip; beta;;  ; new ") == ["vip", "beta", "new"]
    assert t("split", ";")("") == []
    assert t("split", ",")(["a,b", "c", 3]) == ["a", "b", "c", 3]
    assert t("split", ";")(None) is None


def test_join_makes_text_from_a_list() -> None:
    assert t("join", ";")(["vip", "beta"]) == "vip;beta"
    assert t("join", ", ")(["a", None, True, 2]) == "a, true, 2"
    assert t("join", ";")("already text") == "already text"


@pytest.mark.parametrize("sep", ["", 3])
def test_split_needs_a_separator(sep: Any) -> None:
    with pytest.raises(TransformArgumentError, match="split expects a separator string"):
        t("split", sep)


@pytest.mark.parametrize(
    ("value", "first", "last"),
    [
        ("Ada Lovelace", "Ada", "Lovelace"),
        ("  Ludwig  van Beethoven ", "Ludwig", "van Beethoven"),
        ("Cher", "Cher", None),
        ("   ", None, None),
    ],
)
def test_split_name_takes_the_first_word_or_the_rest(value: str, first: str | None, last: str | None) -> None:
    assert t("split_name", "first")(value) == first
    assert t("split_name", "last")(value) == last


def test_join_name_joins_non_empty_parts_with_spaces() -> None:
    step = t("join_name", ["first_name", "last_name"])
    assert step(("Ada", "Lovelace")) == "Ada Lovelace"
    assert step((" Ada ", None)) == "Ada"
    assert step(("", "  ")) is None


def test_join_name_needs_a_list_of_field_names() -> None:
    with pytest.raises(TransformArgumentError, match="join_name expects a list of canonical field names"):
        t("join_name", "first_name")
    assert TRANSFORMS["join_name"].outbound_only


# --- defaults, constants, coercions ------------------------------------------------------------


@pytest.mark.parametrize("empty", [None, "", "   ", []])
def test_default_replaces_empty_values(empty: Any) -> None:
    assert t("default", "Friend")(empty) == "Friend"


def test_default_keeps_real_values_and_constant_replaces_everything() -> None:
    assert t("default", "Friend")("Ann") == "Ann"
    assert t("default", 0)(0) == 0
    assert t("constant", "syncd")("Ann") == "syncd"
    assert t("constant", "syncd")(None) == "syncd"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        (" Yes ", True),
        ("ON", True),
        ("1", True),
        ("t", True),
        (1, True),
        ("false", False),
        ("no", False),
        ("Off", False),
        ("0", False),
        (0, False),
        (False, False),
        ("", None),
        ("maybe", "maybe"),
        (2, 2),
        (None, None),
    ],
)
def test_bool_parses_common_spellings_and_keeps_the_rest(value: Any, expected: Any) -> None:
    assert t("bool")(value) == expected
    assert type(t("bool")(value)) is type(expected)


def test_not_negates_booleans_only() -> None:
    assert t("not")(True) is False
    assert t("not")("true") == "true"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("str", True, "true"),
        ("str", 42, "42"),
        ("str", 3.5, "3.5"),
        ("str", date(2024, 1, 31), "2024-01-31"),
        ("str", None, None),
        ("int", " 42 ", 42),
        ("int", "-7", -7),
        ("int", 3.0, 3),
        ("int", "3.5", "3.5"),
        ("int", "007x", "007x"),
        ("int", True, True),
        ("float", "3.5", 3.5),
        ("float", 2, 2.0),
        ("float", "nan", "nan"),
        ("float", "abc", "abc"),
    ],
)
def test_coercions_convert_only_when_nothing_is_lost(name: str, value: Any, expected: Any) -> None:
    result = t(name)(value)
    assert result == expected
    assert type(result) is type(expected)


# --- sets and the registry ---------------------------------------------------------------------


def test_set_canonical_form_sorts_dedupes_and_trims() -> None:
    assert canonical_form([" vip", "beta", "vip", "", None, "alpha"], "set") == ["alpha", "beta", "vip"]
    assert canonical_form("vip", "set") == ["vip"]
    assert canonical_form([], "set") is None
    assert canonical_form(None, "set") is None
    assert canonical_form([True, 2], "set") == ["2", "true"]


def test_scalar_canonical_form_turns_blank_text_into_none() -> None:
    assert canonical_form("", "scalar") is None
    assert canonical_form(" \t", "scalar") is None
    assert canonical_form(" Ann ", "scalar") == " Ann "
    assert canonical_form(0, "scalar") == 0
    assert canonical_form(False, "scalar") is False


def test_unknown_transform_names_get_a_suggestion() -> None:
    with pytest.raises(TransformArgumentError, match="unknown transform 'e164x' — did you mean 'e164'"):
        compile_step("e164x")
    with pytest.raises(TransformArgumentError, match=r"unknown transform 'frobnicate'$"):
        compile_step("frobnicate")


def test_arguments_are_required_or_refused_as_declared() -> None:
    with pytest.raises(TransformArgumentError, match="transform 'map' needs an argument"):
        compile_step("map")
    with pytest.raises(TransformArgumentError, match="transform 'lower' takes no argument"):
        compile_step("lower", True)


def test_boolean_yielding_steps_are_recognised_for_consent_fields() -> None:
    assert yields_bool(t("bool"))
    assert yields_bool(t("map", {"subscribed": True, "unsubscribed": False}))
    assert not yields_bool(t("map", {"subscribed": True, "unsubscribed": "no"}))
    assert not yields_bool(t("map", {"values": {"a": True}, "default": "x"}))
    assert yields_bool(t("constant", False))
    assert not yields_bool(t("str"))


def test_the_registry_offers_at_least_the_documented_transforms() -> None:
    required = {
        "trim", "lower", "upper", "title", "collapse_whitespace", "e164", "email", "date", "datetime",
        "map", "split", "join", "split_name", "join_name", "default", "constant", "bool", "str", "int", "float",
    }  # fmt: skip
    assert required <= set(TRANSFORMS)
