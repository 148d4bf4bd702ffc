"""Prometheus's configuration and alert rules, checked by promtool (Prometheus's own checker)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from fsdl_deploy.prometheus import local_prometheus_config
from fsdl_lib.config import Settings
from tests.conftest import ROOT

MONITORING = ROOT / "monitoring"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def promtool(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: scripts/test-prerequisites.sh installs Debian's prometheus package"
    return subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_alert_rules_are_valid():
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout


def test_alert_rules_pass_their_unit_tests():
    """Each alert fires on the series that should raise it and stays quiet otherwise (alerts.test.yml)."""
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_that_fires_it():
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load((MONITORING / "alerts.test.yml").read_text())["tests"]
    fired = {check["alertname"] for test in tests for check in test["alert_rule_test"] if check["exp_alerts"]}
    assert alerts == fired
    assert {"ModelInputDrift", "PredictionErrorRateHigh", "NoModelServed", "ReviewQueueGrowing",
            "DagRunFailed", "PredictionLatencyP99High"} <= alerts  # fmt: skip


def test_a_broken_rule_is_refused():
    """promtool really checks: a rule with a bad expression fails (so the passing checks mean something)."""
    broken = MONITORING / "alerts.yml"
    text = broken.read_text().replace("fsdl_model_served == 0", "fsdl_model_served ==", 1)
    scratch = ROOT / "storage" / "test-broken-alerts.yml"
    scratch.parent.mkdir(exist_ok=True)
    scratch.write_text(text)
    try:
        result = promtool("check", "rules", str(scratch))
    finally:
        scratch.unlink()
    assert result.returncode != 0
    assert "parse error" in result.stdout + result.stderr


def test_compose_configuration_is_valid_and_mounted_where_it_says(tmp_path):
    compose = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    # The compose file mounts both files where the configuration says.
    volumes = COMPOSE["services"]["prometheus"]["volumes"]
    assert "./monitoring/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in volumes
    assert f"./monitoring/alerts.yml:{compose['rule_files'][0]}:ro" in volumes
    assert "./storage/prometheus/web.yml:/etc/prometheus/web.yml:ro" in volumes
    local = dict(compose, rule_files=[str(MONITORING / "alerts.yml")])
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(local))
    result = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_local_configuration_targets_the_configured_ports(tmp_path):
    settings = Settings.from_env({"WEBAPP_PORT": "8100", "PROMETHEUS_PORT": "9190", "STATSD_EXPORTER_PORT": "9202"})
    config = local_prometheus_config(settings, ROOT)
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {"webapp": ["127.0.0.1:8100"], "airflow": ["127.0.0.1:9202"]}
    out = subprocess.run(
        [str(Path(sys.executable).with_name("fsdl-deploy")), "prometheus-config", "--root", str(ROOT)],
        capture_output=True, text=True, check=True, env={"WEBAPP_PORT": "8100"},
    )  # fmt: skip
    assert '"127.0.0.1:8100"' in out.stdout
    (tmp_path / "prometheus.yml").write_text(out.stdout)
    result = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_web_configuration_holds_a_bcrypt_hash_of_the_generated_password(tmp_path):
    import bcrypt

    out = subprocess.run(
        [str(Path(sys.executable).with_name("fsdl-deploy")), "prometheus-web-config"],
        capture_output=True, text=True, check=True, env={"PROMETHEUS_PASSWORD": "s3cret-for-the-test"},
    )  # fmt: skip
    assert "s3cret-for-the-test" not in out.stdout
    users = yaml.safe_load(out.stdout)["basic_auth_users"]
    assert bcrypt.checkpw(b"s3cret-for-the-test", users["admin"].encode())
    (tmp_path / "web.yml").write_text(out.stdout)
    result = promtool("check", "web-config", str(tmp_path / "web.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    refused = subprocess.run(
        [str(Path(sys.executable).with_name("fsdl-deploy")), "prometheus-web-config"],
        capture_output=True,
        text=True,
        env={},
    )
    assert refused.returncode == 2
    assert "PROMETHEUS_PASSWORD" in refused.stderr
