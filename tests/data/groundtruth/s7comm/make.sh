#!/bin/sh
# Regenerates the tshark ground truth for tests/data/s7comm/*: one row per TPKT-carrying frame,
# repeated fields (several TPDUs or items in one frame) joined with '|'. tshark 4.0.
set -e
cd "$(dirname "$0")"
HEADER=frame,sport,dport,tpkt_len,cotp_type,cotp_eot,cotp_tpdu_number,called_tsap,tpdu_size,protid,rosctr,pduref,parlg,datlg,errcls,errcod,func,itemcount,item_syntaxid,item_transp_size,item_count,item_db,item_area,item_address,data_returncode,data_transportsize,data_length,maxamq_calling,maxamq_called,pdu_length,ud_type,ud_funcgroup,ud_subfunc,ud_seq_num,ud_errcod,pi_service,malformed
for pcap in ../../s7comm/*; do
  tshark -n -r "$pcap" -Y tpkt -T fields -E header=y -E separator=, -E occurrence=a -E aggregator='|' -E quote=n \
    -e frame.number -e tcp.srcport -e tcp.dstport -e tpkt.length -e cotp.type -e cotp.eot -e cotp.tpdu-number \
    -e cotp.dst-tsap-bytes -e cotp.tpdu_size -e s7comm.header.protid -e s7comm.header.rosctr -e s7comm.header.pduref \
    -e s7comm.header.parlg -e s7comm.header.datlg -e s7comm.header.errcls -e s7comm.header.errcod -e s7comm.param.func \
    -e s7comm.param.itemcount -e s7comm.param.item.syntaxid -e s7comm.param.item.transp_size -e s7comm.param.item.length \
    -e s7comm.param.item.db -e s7comm.param.item.area -e s7comm.param.item.address -e s7comm.data.returncode \
    -e s7comm.data.transportsize -e s7comm.data.length -e s7comm.param.maxamq_calling -e s7comm.param.maxamq_called \
    -e s7comm.param.pdu_length -e s7comm.param.userdata.type -e s7comm.param.userdata.funcgroup \
    -e s7comm.param.userdata.subfunc -e s7comm.param.userdata.seq_num -e s7comm.param.errcod \
    -e s7comm.param.pistart.servicename -e _ws.malformed \
    2>/dev/null | sed "1s/.*/$HEADER/" > "$(basename "$pcap").csv"
done
