"""Agency-side encoding: normalise, tokenise and hash identifiers into keyed Bloom filters."""

from .encode_file import encode_csv
from .encoder import BloomEncoder, EncodeReport
from .errors import EncodingError, InputError, SecretError
from .secret import ENV_VAR, Secret, generate_secret_file, read_secret

__all__ = [
    "ENV_VAR",
    "BloomEncoder",
    "EncodeReport",
    "EncodingError",
    "InputError",
    "Secret",
    "SecretError",
    "encode_csv",
    "generate_secret_file",
    "read_secret",
]
