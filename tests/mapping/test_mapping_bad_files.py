"""A corpus of broken mapping files, each with the exact problems an admin must be shown.

Each ``bad/*.toml`` file starts with one ``# expect: <file>: <key.path>: <message>`` line per
problem it must produce; loading must report exactly those problems, no more.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.mapping import MappingError, load_mapping, load_mappings

from ._support import KNOWN_APPS, MAPPINGS

BAD = Path(__file__).parent / "bad"
BAD_FILES = sorted(BAD.glob("*.toml"))


def expectations(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.removeprefix("# expect: ") for line in lines if line.startswith("# expect: ")]


def test_the_corpus_covers_at_least_thirty_broken_files() -> None:
    assert len(BAD_FILES) >= 30
    for path in BAD_FILES:
        expected = expectations(path)
        assert expected, f"{path.name} has no '# expect:' line"
        assert all(e.startswith(f"{path.name}: ") for e in expected), path.name


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_bad_mapping_file_reports_exactly_the_expected_problems(path: Path) -> None:
    with pytest.raises(MappingError) as caught:
        load_mapping(path, known_apps=KNOWN_APPS)
    problems = caught.value.problems
    expected = expectations(path)
    for wanted in expected:
        matching = [p for p in problems if wanted in p]
        assert matching, f"expected {wanted!r} in {problems!r}"
        assert matching[0].startswith(f"{path}: "), "each problem starts with the file path as given"
    assert len(problems) == len(expected), problems


def test_every_shape_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "many.toml"
    path.write_text(
        """
name = "Many Problems"
key = "email"
[apps.crm]
objct = "contacts"
[apps.email]
object = "members"
[conflict]
policy = "winner"
[fields.email]
transforms = ["emial", { split = 3 }]
apps.crm = { path = "properties.email", direction = "sideways" }
apps.email = "email_address"
""",
        encoding="utf-8",
    )
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    assert caught.value.problems == [
        f"{path}: name: expected lowercase letters, digits, '_' and '-', got 'Many Problems'",
        f"{path}: apps.crm.object: required key is missing",
        f"{path}: apps.crm.objct: unknown key 'objct' — did you mean 'object'? (allowed: object, filter)",
        f"{path}: conflict.policy: unknown policy 'winner' — did you mean 'owner'?"
        " (expected one of 'owner', 'priority', 'newest', 'review')",
        f"{path}: fields.email.transforms[0]: unknown transform 'emial' — did you mean 'email'?",
        f"{path}: fields.email.transforms[1]: split expects a separator string such as ';', got 3",
        f"{path}: fields.email.apps.crm.direction: unknown direction 'sideways'"
        " (expected one of 'both', 'in', 'out')",
    ]
    assert str(caught.value) == "\n".join(caught.value.problems)


def test_every_cross_check_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "cross.toml"
    path.write_text(
        """
name = "cross"
key = "emial"
[apps.crm]
object = "contacts"
[apps.email]
object = "members"
[[apps.email.filter]]
field = "stage"
op = "eq"
value = "lead"
[conflict]
policy = "owner"
owner = "crn"
[fields.email]
transforms = ["email"]
apps.crm = "properties.email"
apps.email = "email_address"
""",
        encoding="utf-8",
    )
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    assert caught.value.problems == [
        f"{path}: conflict.owner: unknown app 'crn' — did you mean 'crm'? (apps are declared under [apps])",
        f"{path}: key: unknown field 'emial' — did you mean 'email'?",
        f"{path}: apps.email.filter[0].field: unknown field 'stage'",
    ]


def test_load_mappings_reports_the_problems_of_every_file_together(tmp_path: Path) -> None:
    duplicate = tmp_path / "contacts_copy.toml"
    duplicate.write_text((MAPPINGS / "contacts.toml").read_text(encoding="utf-8"), encoding="utf-8")
    broken = BAD / "policy_typo.toml"
    paths = [MAPPINGS / "contacts.toml", broken, duplicate, MAPPINGS / "users.toml"]
    with pytest.raises(MappingError) as caught:
        load_mappings(paths, known_apps=KNOWN_APPS)
    problems = caught.value.problems
    assert len(problems) == 2
    assert problems[0].startswith(f"{broken}: conflict.policy: unknown policy 'prority'")
    assert problems[1] == (
        f"{duplicate}: name: sync name 'contacts' is already used by {MAPPINGS / 'contacts.toml'}"
    )


def test_missing_and_undecodable_files_are_reported_not_raised_raw(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(MappingError, match=f"^{missing}: cannot read mapping file: no such file$"):
        load_mapping(missing)
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('name = "caf\u00e9"\n'.encode("latin-1"))
    with pytest.raises(MappingError, match=f"^{latin1}: byte 11: the file is not valid UTF-8$"):
        load_mapping(latin1)


def test_unknown_app_check_needs_known_apps() -> None:
    path = BAD / "app_not_in_config.toml"
    assert load_mapping(path).apps == ("crm", "zendeskk")
