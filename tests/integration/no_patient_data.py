#!/usr/bin/python3
"""Logs and the audit journal carry no patient data.

Runs the whole demo territory (relais-demo, CurveZMQ, every agent logging verbosely), keeps
its data directory, and searches everything a CPTS operator would read or ship to a log
collector — the demo's stderr (the agents' logs), relaisd.log and audit.log — for the demo
patient's identity: family and given names, birth date, local id, INS matricule. The
values are the fictitious ones of agents/reference/samples.c, which the stories send in
AppointmentRequest and DischargeNotification bodies; the demo completing proves they
crossed the broker. Exits 0 when none appears (and the logs are not empty), 1 otherwise.
"""
import argparse
import re
import shutil
import subprocess
import sys

PATIENT = ["DEMO-PATIENT", "Jeanne", "1946-01-01", "DEMO-LOCAL-0042", "246019999999942"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo", required=True)
    args = ap.parse_args()
    run = subprocess.run([args.demo, "--keep-data", "--verbose"], capture_output=True,
                         text=True, timeout=120)
    if run.returncode != 0:
        print(run.stdout, run.stderr, sep="\n")
        print("no_patient_data: the demo failed; 0 passed, 1 failed")
        return 1
    m = re.search(r"data directory kept: (\S+)", run.stdout + run.stderr)
    if not m:
        print("no_patient_data: the demo did not say where its data is; 0 passed, 1 failed")
        return 1
    data = m.group(1)
    sources = {"agents' logs (stderr)": run.stderr}
    for name in ("relaisd.log", "audit.log"):
        with open(f"{data}/{name}", encoding="utf-8", errors="replace") as f:
            sources[name] = f.read()
    passed = failed = 0
    # The logs must be real: a vacuous pass on empty files proves nothing.
    for name, needle in (("relaisd.log", "session: opened"), ("audit.log", "submit.accepted"),
                         ("agents' logs (stderr)", "agent")):
        if needle in sources[name]:
            passed += 1
        else:
            print(f"FAIL {name} does not contain '{needle}': is it the demo's log?")
            failed += 1
    for name, text in sources.items():
        for value in PATIENT:
            if value in text:
                line = next(l for l in text.splitlines() if value in l)
                print(f"FAIL {name} contains patient data '{value}': {line[:200]}")
                failed += 1
            else:
                passed += 1
    shutil.rmtree(data, ignore_errors=True)
    print(f"no_patient_data: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
