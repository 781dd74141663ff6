#!/usr/bin/env python3
"""tshark 4.0 ground truth for S7comm captures: one CSV row per frame that carries TPKT/COTP/S7comm.

usage: groundtruth.py PCAP OUT.csv [extra tshark args, e.g. -d tcp.port==10102,tpkt]

The shape of tests/data/groundtruth/modbus/*.csv (adapted from the team's shared
data/tools/groundtruth.py, its s7comm columns extended with the COTP TSAPs and TPDU size, the
negotiated PDU size and AmQ, item syntax ids, userdata error codes, PI service names, block file
names and SZL ids). Repeated fields (several items in one PDU) are joined with '|'.
Computed columns: direction ('request' when the destination port is the server's, 'response' when
the source port is; the server port is 102 unless GT_S7_PORT says otherwise), malformed (1 where
tshark added "Malformed Packet"), expert_sev (highest expert severity), proto_expert (expert
messages of the TPKT/COTP/S7comm dissectors).
"""
import csv, os, subprocess, sys

PORT = os.environ.get("GT_S7_PORT", "102")
FIELDS = [
    ("frame", "frame.number"), ("time_epoch", "frame.time_epoch"), ("stream", "tcp.stream"),
    ("src", "ip.src"), ("sport", "tcp.srcport"), ("dst", "ip.dst"), ("dport", "tcp.dstport"),
    ("tcp_len", "tcp.len"), ("tcp_reassembled_in", "tcp.reassembled_in"),
    ("tpkt_len", "tpkt.length"), ("cotp_type", "cotp.type"), ("cotp_eot", "cotp.eot"),
    ("cotp_src_tsap", "cotp.src-tsap-bytes"), ("cotp_dst_tsap", "cotp.dst-tsap-bytes"),
    ("cotp_tpdu_size", "cotp.tpdu_size"),
    ("protid", "s7comm.header.protid"), ("rosctr", "s7comm.header.rosctr"),
    ("pduref", "s7comm.header.pduref"), ("parlg", "s7comm.header.parlg"), ("datlg", "s7comm.header.datlg"),
    ("errcls", "s7comm.header.errcls"), ("errcod", "s7comm.header.errcod"),
    ("func", "s7comm.param.func"), ("maxamq_calling", "s7comm.param.maxamq_calling"),
    ("maxamq_called", "s7comm.param.maxamq_called"), ("pdu_length", "s7comm.param.pdu_length"),
    ("itemcount", "s7comm.param.itemcount"), ("item_syntaxid", "s7comm.param.item.syntaxid"),
    ("item_transp_size", "s7comm.param.item.transp_size"), ("item_length", "s7comm.param.item.length"),
    ("item_db", "s7comm.param.item.db"), ("item_area", "s7comm.param.item.area"),
    ("item_address", "s7comm.param.item.address"),
    ("data_returncode", "s7comm.data.returncode"), ("data_transportsize", "s7comm.data.transportsize"),
    ("data_length", "s7comm.data.length"),
    ("pi_service", "s7comm.param.pistart.servicename"), ("block_filename", "s7comm.param.blockcontrol.filename"),
    ("ud_type", "s7comm.param.userdata.type"),
    ("ud_funcgroup", "s7comm.param.userdata.funcgroup"), ("ud_subfunc", "s7comm.param.userdata.subfunc"),
    ("ud_seq", "s7comm.param.userdata.seq_num"), ("ud_lastdataunit", "s7comm.param.userdata.lastdataunit"),
    ("ud_errcod", "s7comm.param.errcod"),
    ("szl_id", "s7comm.data.userdata.szl_id"), ("szl_index", "s7comm.data.userdata.szl_index"),
]
TAIL = [("expert_msgs", "_ws.expert.message"), ("expert_sev_raw", "_ws.expert.severity"),
        ("protocols", "frame.protocols")]
SEV = {2097152: "chat", 4194304: "note", 6291456: "warn", 8388608: "error", 1048576: "comment"}
OWN = ("S7", "s7comm", "COTP", "TPKT", "Malformed")


def main(pcap, out, extra):
    cols = FIELDS + TAIL
    cmd = ["tshark", "-n", "-r", pcap, *extra, "-Y", "tpkt || cotp || s7comm", "-T", "fields",
           "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=|", "-E", "quote=n"]
    for _, f in cols:
        cmd += ["-e", f]
    p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=True)
    names = [c for c, _ in FIELDS]
    outcols = names[:9] + ["direction"] + names[9:] + ["malformed", "expert_sev", "proto_expert", "expert_msgs", "protocols"]
    rows = 0
    with open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=outcols, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for line in p.stdout.splitlines():
            v = line.split("\t")
            v += [""] * (len(cols) - len(v))
            r = dict(zip([c for c, _ in cols], v))
            r["direction"] = "request" if r["dport"] == PORT else ("response" if r["sport"] == PORT else "")
            sevs = [int(s) for s in r["expert_sev_raw"].split("|") if s.strip().isdigit()]
            r["expert_sev"] = SEV.get(max(sevs), str(max(sevs))) if sevs else ""
            msgs = r["expert_msgs"].split("|") if r["expert_msgs"] else []
            r["malformed"] = "1" if any(m.startswith("Malformed Packet") for m in msgs) else "0"
            r["proto_expert"] = "|".join(m for m in msgs if any(k in m for k in OWN))
            w.writerow(r)
            rows += 1
    print(f"{rows} rows -> {out}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
