import dataclasses

import pytest

from linkage_service.wire.errors import SchemaError
from linkage_service.wire.schema import BUILTIN_SCHEMAS, load_schema, parse_schema

MINIMAL = """
schema_version = 1
name = "t"
[[fields]]
name = "family_name"
normaliser = "family_name"
tokeniser = "qgrams"
weight = 10
"""


@pytest.mark.parametrize("name", sorted(BUILTIN_SCHEMAS))
def test_builtin_schemas_load_and_have_stable_fingerprints(name):
    first, second = load_schema(name), load_schema(name)
    assert first == second
    assert len(first.fingerprint) == 32
    assert first.filter_bits % 64 == 0


def test_children_schema_reads_the_standard_columns():
    schema = load_schema("children-v1")
    columns = {f.column for f in schema.fields} | {schema.record_id_column}
    assert columns == {
        "record_id",
        "given_name",
        "family_name",
        "date_of_birth",
        "sex",
        "postcode",
        "nhs_number",
    }
    assert [f.name for f in schema.identifier_fields] == ["nhs_number"]
    # swapped given/family names agree because both hash in the same slot
    assert {f.slot for f in schema.fields if f.name.endswith("_name")} == {"name"}


def test_defaults_are_filled_and_part_of_the_canonical_form():
    schema = parse_schema(MINIMAL)
    assert schema.filter_bits == 1024
    assert schema.thresholds.match == 0.8
    assert '"filter_bits":1024' in schema.canonical()


def test_any_change_changes_the_fingerprint():
    base = parse_schema(MINIMAL)
    heavier = parse_schema(MINIMAL.replace("weight = 10", "weight = 11"))
    other_threshold = dataclasses.replace(
        base, thresholds=dataclasses.replace(base.thresholds, match=0.81)
    )
    assert len({base.fingerprint, heavier.fingerprint, other_threshold.fingerprint}) == 3


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.replace("weight = 10", "wieght = 10"), "unknown schema key fields[0].wieght"),
        (lambda s: "colour = 1\n" + s, "unknown schema key colour"),
        (lambda s: s.replace('"qgrams"', '"soundex"'), "fields[0].tokeniser is 'soundex'"),
        (lambda s: s.replace("schema_version = 1", "schema_version = 2"), "schema_version"),
        (lambda s: s + "\n[filter]\nbits = 1000\n", "multiple of 64"),
        (lambda s: s + "\n[thresholds]\nmatch = 0.6\npossible = 0.7\n", "must not exceed"),
        (lambda s: s + "\n[thresholds]\nmatch = 1.5\n", "thresholds.match"),
        (lambda s: s.replace("weight = 10", "weight = 0"), "at least 1"),
        (lambda s: s + MINIMAL.split("\n", 3)[3], "repeated: family_name"),
        (lambda s: s.replace("[[fields]]", "[[fields"), "not valid TOML"),
        (
            lambda s: s.replace('"family_name"\ntokeniser', '"date"\ntokeniser'),
            "tokeniser 'qgrams' cannot use normaliser 'date'",
        ),
        (lambda s: s.replace("weight = 10", 'weight = 10\ncolumn = ""'), "column must be"),
        (lambda s: s + "\n[rules]\nmin_fields_present = 2\n", "min_fields_present"),
        (
            lambda s: (
                s + '\n[[fields]]\nname = "n"\nnormaliser = "nhs_number"\n'
                'tokeniser = "identifier"\nmissing = "reject"\n'
            ),
            "cannot be 'reject'",
        ),
    ],
)
def test_bad_schemas_are_refused_with_the_problem_named(edit, message):
    with pytest.raises(SchemaError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_schema(edit(MINIMAL))


def test_unknown_schema_name_lists_the_builtins():
    with pytest.raises(SchemaError, match="children-v1"):
        load_schema("no-such-schema")
