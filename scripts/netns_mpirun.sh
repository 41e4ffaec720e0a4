#!/usr/bin/env bash
# Two "hosts" on one machine: runs `mpirun -np 2 PROGRAM ARGS...` with one rank in each of two fresh network
# namespaces joined by a veth pair, so that MPI's traffic really crosses a network interface (TCP over the veth;
# shared memory is switched off). mpirun starts the second rank the way it would over ssh, through an rsh agent that
# enters the other namespace instead. The namespaces are removed afterwards.
#
#   netns_mpirun.sh PROGRAM ARGS...
#
# The program's stdout and stderr pass through; the bytes the veth carried from the first rank's side go to the
# file named by $NETNS_TX_BYTES_FILE, if set. Exit: the job's, or 77 (CTest's "skipped") where namespaces cannot be
# made (not root, no CAP_NET_ADMIN, no iproute2). A real multi-host run needs none of this: see docs/distributed.md.
set -euo pipefail

if [[ $(id -u) -ne 0 ]] || ! command -v ip > /dev/null; then
  echo "netns_mpirun: needs root and iproute2 (ip netns)" >&2
  exit 77
fi
tag=$$
ns_a=dojo-a-$tag ns_b=dojo-b-$tag veth_a=dva$tag veth_b=dvb$tag
net=10.213.$((tag % 200 + 20))
work=$(mktemp -d)
cleanup() {
  ip netns del "$ns_a" 2> /dev/null || true
  ip netns del "$ns_b" 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
if ! ip netns add "$ns_a" 2> "$work/err"; then
  echo "netns_mpirun: cannot create network namespaces here: $(cat "$work/err")" >&2
  exit 77
fi
ip netns add "$ns_b"
ip link add "$veth_a" type veth peer name "$veth_b"
ip link set "$veth_a" netns "$ns_a"
ip link set "$veth_b" netns "$ns_b"
ip -n "$ns_a" addr add "$net.1/24" dev "$veth_a"
ip -n "$ns_b" addr add "$net.2/24" dev "$veth_b"
for ns in "$ns_a" "$ns_b"; do ip -n "$ns" link set lo up; done
ip -n "$ns_a" link set "$veth_a" up
ip -n "$ns_b" link set "$veth_b" up

# mpirun calls the agent as `agent [options] HOST COMMAND...`, as it would call ssh.
cat > "$work/agent.sh" << AGENT
#!/bin/sh
while [ "\${1#-}" != "\$1" ]; do shift; done
host=\$1; shift
case \$host in
  $net.1) ns=$ns_a ;;
  $net.2) ns=$ns_b ;;
  *) echo "agent: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec \$ns /bin/sh -c "\$*"
AGENT
chmod +x "$work/agent.sh"
printf '%s slots=1\n%s slots=1\n' "$net.1" "$net.2" > "$work/hostfile"

tx_bytes() { ip -n "$ns_a" -s -j link show "$veth_a" | sed -E 's/.*"tx":\{"bytes":([0-9]+).*/\1/'; }
before=$(tx_bytes)
status=0
ip netns exec "$ns_a" mpirun --allow-run-as-root --hostfile "$work/hostfile" -np 2 \
  --mca plm_rsh_agent "$work/agent.sh" --mca oob_tcp_if_include "$net.0/24" \
  --mca btl tcp,self --mca btl_tcp_if_include "$net.0/24" -x OMP_WAIT_POLICY -x OPENBLAS_CORETYPE "$@" || status=$?
if [[ -n ${NETNS_TX_BYTES_FILE:-} ]]; then
  echo $(($(tx_bytes) - before)) > "$NETNS_TX_BYTES_FILE"
fi
exit $status
