# Sourced by bench/attack.sh and bench/soak.sh: sets SIM_DLL and GW_CMD (the gateway command) from
# GATEWAY=aot|jit unless they are given, and builds them unless NOBUILD=1. $1 names the caller in errors.
# Expects ROOT and GATEWAY.
SIM_DLL=${SIM_DLL:-$ROOT/simulators/edgeshield-sim/bin/Release/net10.0/edgeshield-sim.dll}
if [[ -z "${GW_CMD:-}" ]]; then
  case $GATEWAY in
    aot) GW_CMD=$ROOT/edge/EdgeShield.Host/bin/Release/net10.0/linux-x64/publish/edgeshield ;;
    jit) GW_CMD="dotnet $ROOT/edge/EdgeShield.Host/bin/Release/net10.0/edgeshield.dll" ;;
    *) echo "$1: GATEWAY is aot or jit" >&2; exit 2 ;;
  esac
  if [[ -z "${NOBUILD:-}" ]]; then
    dotnet build -c Release -v q -nologo "$ROOT/simulators/edgeshield-sim" >/dev/null
    if [[ $GATEWAY == aot ]]; then
      dotnet publish -c Release -r linux-x64 -v q -nologo "$ROOT/edge/EdgeShield.Host" >/dev/null
    else
      dotnet build -c Release -v q -nologo "$ROOT/edge/EdgeShield.Host" >/dev/null
    fi
  fi
fi
