"""The vectorised field tables against a record-at-a-time reference encoder."""

import blake3
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from clients.encoding.csv_input import ColumnChunk
from clients.encoding.encoder import BloomEncoder
from clients.encoding.field_table import pack_positions
from clients.encoding.fields import field_tokeniser
from clients.encoding.secret import Secret, slot_key
from linkage_service.wire.schema import load_schema

SCHEMA = load_schema("children-v1")
SECRET = Secret(bytes(range(32)))


def reference_bits(record: tuple[str, ...]) -> np.ndarray:
    """bool (filter_bits,): every token of every filter field hashed on its own, bits set."""
    out = np.zeros(SCHEMA.filter_bits, dtype=bool)
    for spec, raw in zip(SCHEMA.filter_fields, record, strict=False):
        tokens = field_tokeniser(spec)(raw) if raw.strip() else None
        for token in tokens or ():
            digest = blake3.blake3(token.encode(), key=slot_key(SECRET, spec.slot)).digest(
                length=4 * spec.weight
            )
            positions = np.frombuffer(digest, dtype="<u4") % SCHEMA.filter_bits
            out[positions] = True
    return out


def encode_chunks(records: list[tuple[str, ...]], chunk_rows: int) -> np.ndarray:
    encoder = BloomEncoder(SCHEMA, SECRET)
    width = len(SCHEMA.filter_fields) + len(SCHEMA.identifier_fields)
    out = []
    for start in range(0, len(records), chunk_rows):
        part = records[start : start + chunk_rows]
        chunk = ColumnChunk(
            lines=list(range(start + 2, start + 2 + len(part))),
            record_ids=[f"R{start + i}" for i in range(len(part))],
            columns=[[r[k] for r in part] for k in range(width)],
            problems=[],
            rows_read=len(part),
        )
        out.append(np.unpackbits(encoder.encode(chunk).bits, axis=1).astype(bool))
    return np.concatenate(out)


GIVEN = ["Amelia", "amelia", "Bill", "William", "Mary-Jane", "José", "O'Neil", "Baby", "Li"]
FAMILY = ["Smith", "SMITH", "Smith-Jones", "de la Cruz", "Nguyen", "O'Brien", "Ng"]
DATES = ["2015-03-07", "07/03/2015", "7/3/15", "20150307", "03/07/2015", "01/01/2016"]
POSTCODES = ["SW1A 1AA", "sw1a1aa", "SW1A", "B10 8BW", "B108BW", "M1 1AE"]
SEXES = ["F", "female", "2", "M", "1", "U"]
NHS = ["9434765919", "943 476 5919", "", "1234567890"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(*(st.sampled_from(v) for v in (GIVEN, FAMILY, DATES, SEXES, POSTCODES, NHS))),
        min_size=1,
        max_size=30,
    ),
    st.integers(min_value=1, max_value=7),
)
def test_encoder_bits_equal_the_record_at_a_time_reference(records, chunk_rows):
    got = encode_chunks(records, chunk_rows)
    want = np.stack([reference_bits(r) for r in records])
    assert np.array_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 4), min_size=0, max_size=40),
    st.integers(min_value=1, max_value=6),
    st.sampled_from([64, 128, 1024]),
    st.randoms(use_true_random=False),
)
def test_pack_positions_sets_exactly_the_owners_bits(owners_gaps, weight, n_bits, rnd):
    owner = np.cumsum(np.asarray(owners_gaps, dtype=np.int64)) if owners_gaps else np.zeros(0, int)
    n_rows = int(owner[-1]) + 1 + rnd.randint(0, 3) if owner.size else rnd.randint(1, 3)
    positions = np.array(
        [[rnd.randrange(n_bits) for _ in range(weight)] for _ in owner], dtype=np.uint32
    ).reshape(len(owner), weight)
    want = np.zeros((n_rows, n_bits), dtype=bool)
    for t, row in enumerate(owner):
        want[row, positions[t]] = True
    got = pack_positions(owner.astype(np.int64), positions, n_rows, n_bits)
    assert got.shape == (n_rows, n_bits // 64) and got.dtype == np.uint64
    assert np.array_equal(np.unpackbits(got.view(np.uint8), axis=1).astype(bool), want)


def test_pack_positions_spans_several_cache_blocks():
    rng = np.random.default_rng(7)
    n_rows, n_bits = 5000, 1024
    owner = np.sort(rng.integers(0, n_rows, 20000))
    positions = rng.integers(0, n_bits, (owner.size, 3)).astype(np.uint32)
    want = np.zeros((n_rows, n_bits), dtype=bool)
    want[owner[:, None], positions] = True
    got = pack_positions(owner, positions, n_rows, n_bits)
    assert np.array_equal(np.unpackbits(got.view(np.uint8), axis=1).astype(bool), want)
