"""The vectorised NHS-number check against its scalar reference, and identifier tokens."""

import random
from collections import Counter

import blake3
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from clients.encoding.identifiers import IdentifierColumn, nhs_numbers_vectorised
from clients.encoding.normalise import normalise_nhs_number

STATUS = ("missing", "invalid", "valid")


def _reference(raws):
    results = [normalise_nhs_number(r) for r in raws]
    return [r.value for r in results], [STATUS.index(r.status) for r in results]


def _random_numbers(rng, n):
    out = []
    for _ in range(n):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.choice([9, 10, 10, 10, 11])))
        if rng.random() < 0.2 and len(digits) == 10:
            digits = f"{digits[:3]} {digits[3:6]} {digits[6:]}"
        out.append(
            rng.choice(
                [
                    digits,
                    digits,
                    "",
                    "N/K",
                    "943-476-5919",
                    "1111111111",
                    "9434765919",
                    " 9434765919 ",
                    "９４３４７６５９１９",
                ]
            )
        )
    return out


def test_vectorised_equals_reference_on_random_numbers():
    raws = _random_numbers(random.Random(5), 5000)
    values, status = nhs_numbers_vectorised(raws)
    assert (values, status.tolist()) == _reference(raws)
    assert (status == 2).sum() > 300  # the sample does contain valid numbers


@given(st.lists(st.text(alphabet="0123456789 -x", max_size=14), max_size=30))
def test_vectorised_equals_reference_on_any_text(raws):
    values, status = nhs_numbers_vectorised(raws)
    assert (values, status.tolist()) == _reference(raws)


def test_identifier_column_tokens_and_tally():
    column = IdentifierColumn(bytes(32), nhs_numbers_vectorised)
    counts: Counter[str] = Counter()
    tokens = column.tokens(["9434765919", "943 476 5919", "9434765918", ""], 4, counts)
    assert tokens[0] == tokens[1] != 0 and tokens[2] == 0 and tokens[3] == 0
    # the token is the first 8 bytes of the keyed BLAKE3 of the normalised number, little-endian
    digest = blake3.blake3(b"9434765919", key=bytes(32)).digest(length=8)
    assert int(tokens[0]) == int.from_bytes(digest, "little")
    assert counts == Counter(valid=2, invalid=1, missing=1)
    other = IdentifierColumn(bytes(range(32)), nhs_numbers_vectorised)
    assert other.tokens(["9434765919"], 1, Counter())[0] != tokens[0]
    assert column.tokens(None, 3, counts).tolist() == [0, 0, 0]
    assert np.asarray(tokens).dtype == np.uint64
