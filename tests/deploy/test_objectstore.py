"""The object store's identities and command line (fsdl_deploy.objectstore); the identities are
tried on a real store in tests/lib/test_storage.py."""

from __future__ import annotations

import json

import pytest

from fsdl_deploy.objectstore import (
    ACCESS,
    BUCKETS,
    PORT_FLAGS,
    bucket_policies,
    identity_config,
    local_endpoint,
    local_ports,
    server_command,
)
from fsdl_lib.storage import LOCKS_PREFIX as LEASES
from fsdl_lib.storage import SCRATCH_PREFIX as SCRATCH


def test_each_service_gets_exactly_its_buckets_actions_and_only_admin_administers():
    config = json.loads(identity_config({"admin": ("a", "A"), "workers": ("w", "W"), "webapp": ("u", "U")}))
    actions = {identity["name"]: set(identity["actions"]) for identity in config["identities"]}
    assert actions["webapp"] == {"Read:fsdl-uploads", "List:fsdl-uploads", "Write:fsdl-uploads"}
    assert "Read:fsdl-data" in actions["workers"]
    assert "Write:fsdl-uploads" in actions["workers"]  # the merge moves accepted answers out
    assert [name for name, allowed in actions.items() if "Admin" in allowed] == ["admin"]
    assert {bucket for service in ACCESS.values() for bucket in service} <= set(BUCKETS)
    keys = {identity["name"]: identity["credentials"][0] for identity in config["identities"]}
    assert keys["webapp"] == {"accessKey": "u", "secretKey": "U"}


def test_deletes_in_the_data_and_log_buckets_are_the_admins_but_for_leases_and_scratch():
    policies = {bucket: json.loads(policy) for bucket, policy in bucket_policies().items()}
    assert set(policies) == {BUCKETS["data"], BUCKETS["logs"]}
    for bucket, policy in policies.items():
        (statement,) = policy["Statement"]
        assert (statement["Effect"], statement["Action"]) == ("Deny", ["s3:DeleteObject"])
        assert sorted(statement["Principal"]["AWS"]) == sorted(f"arn:aws:iam::*:user/{name}" for name in ACCESS)
        assert statement["NotResource"] == [f"arn:aws:s3:::{bucket}/{LEASES}/*", f"arn:aws:s3:::{bucket}/{SCRATCH}/*"]


def test_an_identity_without_declared_access_is_refused():
    with pytest.raises(ValueError, match=r"no access is declared for \['flower'\]"):
        identity_config({"flower": ("f", "F")})


def test_the_server_listens_on_loopback_and_on_the_chosen_ports_only():
    ports = {flag: 20000 + i for i, flag in enumerate(PORT_FLAGS)}
    command = server_command("weed", "/srv/weed", "/srv/s3.json", ports)
    assert command[:2] == ["weed", "server"]
    assert "-ip.bind=127.0.0.1" in command
    assert {f"-{flag}={port}" for flag, port in ports.items()} <= set(command)
    assert "-s3.port.iceberg=0" in command
    assert "-s3.port.lance=0" in command
    with pytest.raises(ValueError, match=r"ports lacks s3\.port"):
        server_command("weed", "/srv/weed", "/srv/s3.json", {k: v for k, v in ports.items() if k != "s3.port"})


def test_the_local_store_takes_its_s3_port_and_the_seven_after_it():
    ports = local_ports(8333)
    assert set(ports) == set(PORT_FLAGS)
    assert ports["s3.port"] == 8333
    assert sorted(ports.values()) == list(range(8333, 8341))
    assert local_endpoint("0.0.0.0", 8333) == "http://127.0.0.1:8333"
