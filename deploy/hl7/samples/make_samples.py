#!/usr/bin/env python3
"""Writes the sample HL7 v2 messages of relais-hl7 (fictitious patients, written by hand).

Each message is built field by field, so that the positions (PV1-45, PID-32, ...) are right by
construction; the files are committed, and this script is how they were made. Messages end
segments with CR as the standard says; `*.lf.hl7` variants use LF (senders that do so exist).
Usage: make_samples.py OUTDIR [--fuzz FUZZDIR]
"""
import os
import sys


def seg(name, fields):
    n = max(fields) if fields else 0
    parts = [name] + [fields.get(i, "") for i in range(1, n + 1)]
    return "|".join(parts)


def msh(trigger, control, structure=None, charset="UNICODE UTF-8", processing="P", extra=None,
        mtype="ADT"):
    f = {2: "^~\\&", 3: "DXCARE", 4: "CHU-RENNES", 5: "RELAIS", 6: "CPTS",
         7: "20261201103000",
         9: "%s^%s^%s" % (mtype, trigger, structure or mtype + "_" + trigger),
         10: control, 11: processing, 12: "2.5^FRA^2.11", 17: "FRA", 18: charset}
    f.update(extra or {})
    # MSH-1 is the separator itself: the field list starts at MSH-2.
    return "MSH|" + "|".join(f.get(i, "") for i in range(2, max(f) + 1))


INS_OK = "248031234567890^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS"
INS_TEST = "248031234567890^^^ASIP-SANTE-INS-NIR-TEST&1.2.250.1.213.1.4.10&ISO^INS"
IPP = "123456^^^CHU-RENNES&1.2.250.1.71.4.2.2&ISO^PI"
GP_ROL = "10101234567^DUPONT^ALICE^^^DR^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^RPPS"


def pid(ins=INS_OK, status="VALI~QUAL", name="MARTIN^JEANNE^MARIE^^^^L"):
    ids = IPP + ("~" + ins if ins else "")
    return seg("PID", {1: "1", 3: ids, 5: name, 7: "19480312", 8: "F", 32: status})


def pv1(discharge="20261201100000", disposition="01", visit="VN2026-000123", preadmit=""):
    return seg("PV1", {1: "1", 2: "I", 3: "CARDIO^^^CHU-RENNES", 5: preadmit,
                       19: visit + "^^^CHU-RENNES&1.2.250.1.71.4.2.2&ISO^VN",
                       36: disposition, 44: "20261125083000", 45: discharge})


def a03(control="MSG-A03-0001", gp=GP_ROL, dg="I50.0", discharge="20261201100000",
        ins=INS_OK, status="VALI~QUAL", charset="UNICODE UTF-8", processing="P",
        name="MARTIN^JEANNE^MARIE^^^^L", extra_msh=None, zbe=True, evn6="20261201100500"):
    segs = [msh("A03", control, charset=charset, processing=processing, extra=extra_msh),
            seg("EVN", {2: "20261201103000", 6: evn6}),
            pid(ins, status, name),
            seg("PD1", {})]
    if gp:
        segs.append(seg("ROL", {1: "1", 2: "UC", 3: "ODRP^Medecin traitant^FR-ROLE", 4: gp}))
    segs.append(pv1(discharge))
    if zbe:
        segs.append(seg("ZBE", {1: "MVT-0042^CHU-RENNES", 2: "20261201095500", 4: "INSERT",
                                5: "N"}))
    if dg:
        segs.append(seg("DG1", {1: "1", 3: dg + "^Insuffisance cardiaque^I10", 6: "F"}))
    return segs


def ref_i12(control, rt_rpps):
    rf1 = seg("RF1", {1: "A^Accepted", 2: "R^Routine", 3: "CARDIO^Cardiologie", 6: "REF-2026-0007^CHU",
                      7: "20261202", 8: "20261231", 10: "HF^Suivi insuffisance cardiaque"})
    segs = [msh("I12", control, mtype="REF"), rf1,
            seg("PRD", {1: "RP^Referring", 2: "DUPONT^ALICE", 7: "10101234567^RPPS"})]
    if rt_rpps:
        segs.append(seg("PRD", {1: "RT^Referred to", 2: "BENALI^KARIM", 7: rt_rpps + "^RPPS"}))
    segs.append(pid())
    return segs


SAMPLES = {
    # The main case: heart failure, GP in ROL ODRP with an RPPS, qualified INS.
    "a03-heart-failure": a03(),
    # COPD, GP only in PD1-4 (older interfaces), identity merely validated: no INS travels.
    "a03-copd-pd1": [msh("A03", "MSG-A03-0002"),
                     seg("EVN", {2: "20261201103000"}),
                     pid(status="VALI"),
                     seg("PD1", {4: GP_ROL}),
                     pv1(disposition="02"),
                     seg("DG1", {1: "1", 3: "J44.1^BPCO exacerbee^I10", 6: "F"})],
    # A GP the territory does not know: the coordinator gets it, with the reason.
    "a03-unknown-gp": a03("MSG-A03-0003",
                          gp="19999999999^INCONNU^PAUL^^^DR^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1"
                             "&ISO^D^^^RPPS"),
    # No GP at all.
    "a03-no-gp": a03("MSG-A03-0004", gp=None),
    # No PV1-45: the discharge time comes from ZBE-2.
    "a03-zbe-time": a03("MSG-A03-0005", discharge=""),
    # Neither PV1-45 nor ZBE: EVN-6.
    "a03-evn-time": a03("MSG-A03-0006", discharge="", zbe=False),
    # ISO-8859-1 with accented names and escape sequences in a diagnosis text.
    "a03-latin1": a03("MSG-A03-0007", charset="8859/1", name="L\xe9vy^Am\xe9lie^^^^^L",
                      dg="I50.9"),
    # Enhanced acknowledgement mode: MSH-15 AL, MSH-16 NE.
    "a03-enhanced": a03("MSG-A03-0008", extra_msh={15: "AL", 16: "NE"}),
    # Test INS (OID of the test authority): refused in a production territory.
    "a03-test-ins": a03("MSG-A03-0009", ins=INS_TEST),
    # Processing id T (training) on a production channel: refused.
    "a03-processing-t": a03("MSG-A03-0010", processing="T"),
    # Required data missing: no PV1-45, no ZBE, no EVN-6.
    "a03-no-time": a03("MSG-A03-0011", discharge="", zbe=False, evn6=""),
    # An admission (A01) after a preadmission the practice asked for (PV1-5).
    "a01-admission": [msh("A01", "MSG-A01-0001"), seg("EVN", {2: "20261125083000"}),
                      pid(), seg("ROL", {1: "1", 2: "UC", 3: "ODRP^Medecin traitant^FR-ROLE",
                                         4: GP_ROL}),
                      pv1(discharge="", preadmit="PRE-2026-0042")],
    # A referral to a named cardiologist (PRD RT with an RPPS), and one to the pool.
    "ref-i12-named": ref_i12("MSG-REF-0001", "10104567890"),
    "ref-i12-pool": ref_i12("MSG-REF-0002", None),
    # A pre-admission granted (A05, expected admission in PV2-8), then cancelled (A38).
    "a05-preadmission": [msh("A05", "MSG-A05-0001"), seg("EVN", {2: "20261120090000"}), pid(),
                         seg("ROL", {1: "1", 2: "UC", 3: "ODRP^Medecin traitant^FR-ROLE",
                                     4: GP_ROL}),
                         pv1(discharge="", preadmit="PRE-2026-0042"),
                         seg("PV2", {8: "20261125083000"})],
    "a38-cancel-preadmission": [msh("A38", "MSG-A38-0001"), seg("EVN", {2: "20261121090000"}),
                                pid(), seg("PD1", {4: GP_ROL}),
                                pv1(discharge="", preadmit="PRE-2026-0042")],
    # A patient update (A08): a trigger this version of the gateway does not map.
    "a08-update": [msh("A08", "MSG-A08-0001"), seg("EVN", {2: "20261125083000"}),
                   pid(), pv1(discharge="")],
    # EVN-1 and MSH-9 disagree: MSH-9 decides (this is an A03).
    "a03-evn-says-a01": [m.replace("EVN|", "EVN|A01", 1) if m.startswith("EVN") else m
                         for m in a03("MSG-A03-0012")],
    # Escape sequences in names and repetitions: \S\ \T\ \F\ \R\ \E\ \X..\ .
    "a03-escapes": a03("MSG-A03-0013", name="O\\S\\BRIEN\\T\\X^ANNE\\F\\MARIE\\R\\\\E\\"
                                              "\\XC3A9\\^^^^^L"),
}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, segs in SAMPLES.items():
        enc = "latin-1" if "latin1" in name else "utf-8"
        with open(os.path.join(out, name + ".hl7"), "wb") as f:
            f.write(("\r".join(segs) + "\r").encode(enc))
    # The same discharge with LF and CRLF segment ends.
    segs = a03("MSG-A03-0014")
    with open(os.path.join(out, "a03-lf.hl7"), "wb") as f:
        f.write(("\n".join(segs) + "\n").encode())
    segs = a03("MSG-A03-0015")
    with open(os.path.join(out, "a03-crlf.hl7"), "wb") as f:
        f.write(("\r\n".join(segs) + "\r\n").encode())


if __name__ == "__main__":
    main()
