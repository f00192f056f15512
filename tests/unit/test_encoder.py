"""The keyed Bloom encoder: determinism, key separation, and what the tokens make agree."""

import numpy as np
import pytest

from clients.encoding.csv_input import ColumnChunk
from clients.encoding.encoder import BloomEncoder
from clients.encoding.secret import Secret
from linkage_service.wire.schema import load_schema

SCHEMA = load_schema("children-v1")
SECRET = Secret(bytes(range(32)))
OTHER_SECRET = Secret(bytes(range(1, 33)))
BASE = ("Amelia", "Smith", "2015-03-07", "F", "SW1A 1AA", "9434765919")


def encode(*records, secret=SECRET, schema=SCHEMA):
    encoder = BloomEncoder(schema, secret)
    columns = [[r[k] or "" for r in records] for k in range(len(BASE))]
    chunk = ColumnChunk(
        lines=list(range(2, len(records) + 2)),
        record_ids=[f"R{i}" for i in range(len(records))],
        columns=columns,
        problems=[],
        rows_read=len(records),
    )
    return encoder.encode(chunk), encoder


def bits(*records, **kw):
    return np.unpackbits(encode(*records, **kw)[0].bits, axis=1).astype(bool)


def dice(x, y):
    return 2 * (x & y).sum() / (x.sum() + y.sum())


def variant(**changes):
    names = ["given", "family", "dob", "sex", "postcode", "nhs"]
    values = dict(zip(names, BASE, strict=True))
    values.update(changes)
    return tuple(values[n] for n in names)


def test_same_secret_and_schema_give_the_same_bits():
    assert np.array_equal(encode(BASE)[0].bits, encode(BASE)[0].bits)


def test_a_different_secret_gives_unrelated_bits():
    a, b = bits(BASE), bits(BASE, secret=OTHER_SECRET)
    fill = a.mean()
    # unrelated filters overlap about as much as two random ones with this fill
    assert dice(a[0], b[0]) < fill + 0.15
    assert encode(BASE)[1].key_check != encode(BASE, secret=OTHER_SECRET)[1].key_check


def test_fill_is_in_a_plausible_band():
    fill = bits(BASE).mean()
    assert 0.15 < fill < 0.45


@pytest.mark.parametrize(
    ("change", "low"),
    [
        ({"given": "Smith", "family": "Amelia"}, 0.9),  # swapped names: shared slot
        ({"given": "AMELIA ", "family": "smith"}, 1.0),  # case and spacing
        ({"dob": "07/03/2015"}, 1.0),  # another date format
        ({"dob": "20150307"}, 1.0),
        ({"postcode": "sw1a1aa"}, 1.0),
        ({"sex": "Female"}, 1.0),
        ({"nhs": ""}, 1.0),  # identifier is not in the filter
        ({"dob": "2015-07-03"}, 0.9),  # day/month swap
        ({"dob": "2015-01-01"}, 0.75),  # year-only default
        ({"given": "Amelai"}, 0.85),  # typo
        ({"family": "Smith-Jones"}, 0.85),  # double-barrelled later
        ({"postcode": "SW1A 2AA"}, 0.85),  # move within the sector
        ({"family": "Brown"}, 0.7),  # surname changed
    ],
)
def test_errors_real_records_have_keep_dice_high(change, low):
    a, b = bits(BASE, variant(**change))
    assert dice(a, b) >= low


def test_nicknames_collapse_to_the_same_name():
    a, b = bits(variant(given="William"), variant(given="Bill"))
    assert dice(a, b) == 1.0


def test_twins_score_below_a_typo_of_either_twin():
    twin_a, twin_b, typo = bits(BASE, variant(given="Isla"), variant(given="Amelai"))
    # one-to-one solving then prefers each twin's own record over its sibling's
    assert dice(twin_a, twin_b) < dice(twin_a, typo) - 0.05
    assert dice(twin_a, twin_b) < 0.85


def test_valid_nhs_numbers_become_keyed_tokens_and_invalid_ones_do_not():
    chunk, encoder = encode(
        BASE, variant(nhs="943 476 5919"), variant(nhs="9434765918"), variant(nhs=None)
    )
    ids = chunk.identifiers[:, 0]
    assert ids[0] == ids[1] != 0
    assert ids[2] == 0 and ids[3] == 0
    assert dict(encoder.report.identifiers["nhs_number"]) == {
        "valid": 2,
        "invalid": 1,
        "missing": 1,
    }
    other, _ = encode(BASE, secret=OTHER_SECRET)
    assert other.identifiers[0, 0] != ids[0]


def test_each_distinct_value_is_tokenised_once():
    chunk, encoder = encode(*([BASE] * 50 + [variant(given="Oliver")] * 50))
    assert chunk.bits.shape == (100, 128)
    assert encoder._tables[0].distinct_values == 2  # two distinct given names
    bigrams = {
        "_a",
        "am",
        "me",
        "el",
        "li",
        "ia",
        "a_",
        "_s",
        "sm",
        "mi",
        "it",
        "th",
        "h_",
        "_o",
        "ol",
        "iv",
        "ve",
        "er",
        "r_",
    }
    assert encoder._hashers["name"].distinct_tokens == len(bigrams)


def test_rows_without_enough_fields_are_rejected_with_their_line():
    chunk, encoder = encode(BASE, (None, None, None, "F", None, "9434765919"))
    assert chunk.record_ids == ["R0"]
    assert encoder.report.problems[0][0] == 3
    assert "at least 2 needed" in encoder.report.problems[0][1]
