"""Regenerate the Python code for the gRPC API from proto/ (run: python proto/generate.py).

The output (messages, service stubs and their typed .pyi stubs) is committed under
linkage_service/wire/v1/; tests/unit/test_proto_generated.py regenerates into a temporary folder
and fails if anything differs, so the committed code always matches the proto. Generator
versions are pinned here and in pyproject.toml: a different protoc would produce different code.
"""

from __future__ import annotations

import re
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

PINNED = {"grpcio-tools": "1.85.1", "mypy-protobuf": "5.1.0"}
ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PROTO = "mash/linkage/v1/linkage.proto"
PACKAGE = "linkage_service.wire.v1"
OUTPUT = ROOT / "linkage_service" / "wire" / "v1"
GENERATED = ("linkage_pb2.py", "linkage_pb2.pyi", "linkage_pb2_grpc.py", "linkage_pb2_grpc.pyi")
# protoc writes imports for the proto package path; the code lives in a Python package instead.
_PROTO_IMPORT = re.compile(r"^from mash\.linkage\.v1 import ", re.MULTILINE)
_PROTO_IMPORT_BARE = re.compile(r"^import mash\.linkage\.v1\.linkage_pb2$", re.MULTILINE)


def check_pinned_versions() -> None:
    for package, wanted in PINNED.items():
        found = version(package)
        if found != wanted:
            raise SystemExit(
                f"{package} {found} is installed; the generated code is pinned to {wanted}"
            )


def generate(out_dir: Path) -> dict[str, str]:
    """Run protoc into ``out_dir``; return {file name: text} of the generated modules."""
    from grpc_tools import protoc

    include = Path(protoc.__file__).parent / "_proto"
    plugins = Path(sys.executable).parent  # mypy-protobuf's plugins sit beside the interpreter
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={tmp}",
            f"--grpc_python_out={tmp}",
            f"--plugin=protoc-gen-mypy={plugins / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={plugins / 'protoc-gen-mypy_grpc'}",
            f"--mypy_out={tmp}",
            f"--mypy_grpc_out={tmp}",
            PROTO,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        produced = Path(tmp) / "mash" / "linkage" / "v1"
        texts = {name: _fix_imports((produced / name).read_text()) for name in GENERATED}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (out_dir / name).write_text(text)
    return texts


def _fix_imports(text: str) -> str:
    text = _PROTO_IMPORT.sub(f"from {PACKAGE} import ", text)
    return _PROTO_IMPORT_BARE.sub(f"import {PACKAGE}.linkage_pb2", text).replace(
        "mash.linkage.v1.linkage_pb2.", f"{PACKAGE}.linkage_pb2."
    )


if __name__ == "__main__":
    check_pinned_versions()
    generate(OUTPUT)
    print(f"generated {', '.join(GENERATED)} in {OUTPUT.relative_to(ROOT)}", file=sys.stderr)
