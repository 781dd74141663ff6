#!/usr/bin/python3
"""Malformed IEC 60870-5-104 frames an attacker would send, built with scapy's iec104 layers.

    tests/peers/iec104/craft.py                 one line per frame: NAME HEX
    tests/peers/iec104/craft.py --pcap FILE     also writes FILE: each frame alone in its own TCP
                                                stream (client 10.0.0.1:40000+i -> station 10.0.0.2:2404)
    tests/peers/iec104/craft.py --expect        one line per frame: NAME JSON, what tshark's
                                                iec60870_104 / iec60870_asdu dissectors must show

Built with Debian's python3-scapy (2.5, scapy.contrib.scada.iec104): where scapy's layers can express
a frame it builds it (explicit apdu_length / num_io / sq override what scapy would compute); where they
cannot (LEN < 4, an S-frame carrying bytes, an ASDU cut short inside its header or element), the bytes are
written out and the comment says why. tshark is the oracle (Iec104PeerTests runs it on the pcap):
each expectation below is what the frame's name claims, in tshark's field names. Keys:
  "fields":    {tshark field: value} as `tshark -T fields -E occurrence=a -E aggregator=,` prints it
  "malformed": whether tshark marks the frame malformed (_ws.malformed)
  "expert":    a substring of an expert-info message (_ws.expert.message) tshark must raise
  "absent":    fields that must not be shown (e.g. no IOA when the ASDU has none)
  "tshark":    extra tshark options for this frame (default: none, tshark's own preferences)
Where tshark does not flag a frame (an S-frame carrying bytes, a U-frame with 0 or 2 functions, cause 0,
the global CA) the expectation shows the fields that make it an attack; EdgeShield must refuse those itself.
Run with /usr/bin/python3: scapy is a Debian package, not in other Pythons on the path.
"""
import json
import sys

from scapy.all import IP, TCP, Ether, Raw, wrpcap  # noqa: E402
from scapy.contrib.scada.iec104 import (  # noqa: E402
    IEC104_IO_C_IC_NA_1_IOA, IEC104_IO_C_SC_NA_1, IEC104_IO_C_SC_NA_1_IOA, IEC104_IO_C_SE_NC_1_IOA,
    IEC104_I_Message_SeqIOA, IEC104_I_Message_SingleIOA, IEC104_S_Message, IEC104_U_Message)

C_SC_NA_1, C_SE_NC_1, C_IC_NA_1 = 45, 50, 100


def sc(ioa=2000, ca=1, cot=6, **kw):
    """A C_SC_NA_1 select, one object: the base most frames below are bent from."""
    return IEC104_I_Message_SingleIOA(cot=cot, common_asdu_address=ca,
                                      io=[IEC104_IO_C_SC_NA_1_IOA(information_object_address=ioa, s_or_e=1, scs=1)], **kw)


def frames():
    """(name, bytes, expectation) for every frame."""
    out = []

    # Controls: two well-formed frames, so that a broken oracle cannot pass the rest.
    out.append(("valid_startdt_act", bytes(IEC104_U_Message(startdt_act=1)),
                {"fields": {"iec60870_104.type": "0x00000003", "iec60870_104.utype": "0x00000001", "iec60870_104.apdulen": "4"},
                 "malformed": False}))
    out.append(("valid_c_sc_na_1_select", bytes(sc()),
                {"fields": {"iec60870_104.apdulen": "14", "iec60870_asdu.typeid": "45", "iec60870_asdu.numix": "1",
                            "iec60870_asdu.causetx": "6", "iec60870_asdu.addr": "1", "iec60870_asdu.ioa": "2000"},
                 "malformed": False}))

    # LEN > 253: 254 declared and present (a C_SC_NA_1 followed by 240 bytes of filler).
    body = bytes(sc())[6:] + bytes(240)
    out.append(("len_over_253", bytes(sc(apdu_length=4 + len(body)))[:6] + body,
                {"fields": {"iec60870_104.apdulen": "254"}, "expert": "Invalid Apdulen (250 != 10)", "malformed": True}))

    # LEN < 4: scapy's U/S layers have no room for fewer than 4 control octets; raw bytes. With TCP
    # reassembly on (tshark's default) the dissector waits for more bytes and shows nothing; alone in its
    # segment (reassembly off) it is a malformed IEC 60870-5-104 frame.
    out.append(("len_under_4", bytes([0x68, 0x03, 0x01, 0x00, 0x00]),
                {"tshark": ["-o", "tcp.desegment_tcp_streams:FALSE"], "malformed": True,
                 "expert": "Malformed Packet", "absent": ["iec60870_104.apdulen", "iec60870_asdu.typeid"]}))

    # An S-frame carrying an ASDU: scapy's S layer with LEN set by hand and the ASDU as raw payload
    # (N(R) = 0, right for a fresh connection, so that the ASDU is the only thing wrong).
    asdu = bytes(sc())[6:]
    out.append(("s_frame_with_asdu", bytes(IEC104_S_Message(apdu_length=4 + len(asdu), rx_seq_num=0)) + asdu,
                {"fields": {"iec60870_104.type": "0x00000001", "iec60870_104.apdulen": str(4 + len(asdu))},
                 "absent": ["iec60870_asdu.typeid"], "malformed": False}))

    # U-frames with two function bits (STARTDT act + STOPDT act) and with none.
    out.append(("u_frame_two_functions", bytes(IEC104_U_Message(startdt_act=1, stopdt_act=1)),
                {"fields": {"iec60870_104.type": "0x00000003", "iec60870_104.utype": "0x00000005"}, "malformed": False}))
    out.append(("u_frame_no_function", bytes(IEC104_U_Message()),
                {"fields": {"iec60870_104.type": "0x00000003", "iec60870_104.utype": "0x00000000"}, "malformed": False}))

    # I-frame whose LEN is longer than TYPE/SQ/N imply: C_SC_NA_1, N = 1 (10 octets of ASDU), 3 extra octets.
    out.append(("i_len_longer_than_type_n", bytes(sc(apdu_length=17)) + b"\xaa\xbb\xcc",
                {"fields": {"iec60870_104.apdulen": "17", "iec60870_asdu.typeid": "45", "iec60870_asdu.numix": "1"},
                 "expert": "Invalid Apdulen (13 != 10)", "malformed": True}))
    # ... and shorter: C_SE_NC_1 (N = 1 wants IOA + 4-octet float + QOS = 8 octets), the element cut
    # after 2 octets of the float. scapy's float field cannot be cut; the bytes are sliced.
    se = bytes(IEC104_I_Message_SingleIOA(cot=6, common_asdu_address=1,
                                          io=[IEC104_IO_C_SE_NC_1_IOA(information_object_address=3000, scaled_value=42.5)]))
    cut = se[6:6 + 6 + 3 + 2]
    out.append(("i_len_shorter_than_type_n", bytes([0x68, 4 + len(cut)]) + se[2:6] + cut,
                {"fields": {"iec60870_104.apdulen": str(4 + len(cut)), "iec60870_asdu.typeid": "50"},
                 "absent": ["iec60870_asdu.float"], "expert": "Malformed Packet", "malformed": True}))

    # N larger than the objects present: C_SC_NA_1 with N = 5 and two objects; LEN true to the bytes.
    two = IEC104_I_Message_SingleIOA(cot=6, common_asdu_address=1, num_io=5,
                                     io=[IEC104_IO_C_SC_NA_1_IOA(information_object_address=2000, scs=1),
                                         IEC104_IO_C_SC_NA_1_IOA(information_object_address=2001, scs=1)])
    out.append(("n_larger_than_objects", bytes(two),
                {"fields": {"iec60870_104.apdulen": "18", "iec60870_asdu.numix": "5", "iec60870_asdu.ioa": "2000,2001"},
                 "expert": "Malformed Packet", "malformed": True}))

    # SQ = 1 with N = 0: scapy's sequence layer with num_io forced to 0 and no objects (ASDU = header + base IOA).
    out.append(("sq1_n0", bytes(IEC104_I_Message_SeqIOA(type_id=C_SC_NA_1, num_io=0, cot=6, common_asdu_address=1,
                                                        information_object_address=2000, io=[])),
                {"fields": {"iec60870_asdu.sq": "1", "iec60870_asdu.numix": "0", "iec60870_asdu.typeid": "45"},
                 "expert": "Invalid Apdulen (9 != 6)", "malformed": True}))

    # SQ = 1 with no base IOA (lib60870 issue 200): VSQ 0x82, the ASDU ends after the CA. scapy's
    # sequence layer always writes the base IOA; the frame is cut after the CA and LEN set to 10.
    seq = bytes(IEC104_I_Message_SeqIOA(num_io=2, cot=6, common_asdu_address=1, information_object_address=2000,
                                        io=[IEC104_IO_C_SC_NA_1(scs=1), IEC104_IO_C_SC_NA_1(scs=1)]))
    out.append(("sq1_no_base_ioa", bytes([0x68, 10]) + seq[2:6] + bytes([C_SC_NA_1]) + seq[7:12],
                {"fields": {"iec60870_104.apdulen": "10", "iec60870_asdu.sq": "1", "iec60870_asdu.numix": "2"},
                 "expert": "Malformed Packet", "malformed": True, "absent": ["iec60870_asdu.ioa"]}))

    # Cause of transmission 0 (not defined).
    out.append(("cause_0", bytes(sc(cot=0)),
                {"fields": {"iec60870_asdu.causetx": "0", "iec60870_asdu.typeid": "45", "iec60870_asdu.ioa": "2000"}, "malformed": False}))

    # A command to the global common address 0xFFFF (well-formed; dangerous by what it addresses).
    out.append(("global_ca_command", bytes(sc(ca=0xFFFF)),
                {"fields": {"iec60870_asdu.addr": "65535", "iec60870_asdu.typeid": "45", "iec60870_asdu.causetx": "6"}, "malformed": False}))
    # A station interrogation to the global address: the broadcast a station must accept.
    out.append(("global_ca_interrogation", bytes(IEC104_I_Message_SingleIOA(
        cot=6, common_asdu_address=0xFFFF, io=[IEC104_IO_C_IC_NA_1_IOA(information_object_address=0, qoi=20)])),
                {"fields": {"iec60870_asdu.addr": "65535", "iec60870_asdu.typeid": "100", "iec60870_asdu.qoi": "20"}, "malformed": False}))
    return out


def main(argv):
    all_frames = frames()
    if "--expect" in argv:
        for name, _, expect in all_frames:
            print(name, json.dumps(expect, sort_keys=True))
        return 0
    if "--pcap" in argv:
        path = argv[argv.index("--pcap") + 1]
        packets = [Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000 + i, dport=2404, flags="PA", seq=1000, ack=1)
                   / Raw(data) for i, (_, data, _) in enumerate(all_frames)]
        wrpcap(path, packets)
    for name, data, _ in all_frames:
        print(name, data.hex())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
