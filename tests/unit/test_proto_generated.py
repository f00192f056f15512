"""The committed gRPC code is what the pinned generators make of the committed proto."""

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("proto_generate", ROOT / "proto" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regenerating_changes_nothing(tmp_path):
    generator = _generator()
    generator.check_pinned_versions()
    fresh = generator.generate(tmp_path)
    for name, text in fresh.items():
        committed = (generator.OUTPUT / name).read_text()
        assert committed == text, f"{name} is stale: run python proto/generate.py"


def test_generated_code_imports_from_the_project_package():
    from linkage_service.wire.v1 import linkage_pb2, linkage_pb2_grpc

    assert linkage_pb2.DESCRIPTOR.package == "mash.linkage.v1"
    assert hasattr(linkage_pb2_grpc, "AgencyServiceStub")
    assert hasattr(linkage_pb2_grpc, "CoordinatorServiceServicer")
