// Package firewalld manages firewalld rich rules and direct rules over
// firewalld's D-Bus API (no firewall-cmd). Everything it adds goes to both
// the runtime and the permanent configuration; drift in either is reported
// separately ("runtime missing", "permanent missing"), presence is asked
// through firewalld's query methods (it normalises rules), and only what a
// state record says provision created is ever removed.
//
// # Exposure of the JupyterHub container (measured, see exposure_test.go)
//
// Docker DNATs a published port in nat PREROUTING, and firewalld's
// nftables forward chain accepts every DNATed flow ("ct status dnat
// accept") before zones or policies look at it. So the guide's rich rule in
// zone public does not restrict a published port, and neither can a
// firewalld policy on forwarded traffic. Measured with Docker 20.10 and
// firewalld 1.3: COMM was reachable from any address with the rich rule
// alone. What holds on the wire:
//
//   - Publish 8000 and COMM normally (-p 8000:8000 -p COMM:8002) and the
//     proxy and hub APIs on loopback only (-p 127.0.0.1:8001:8001
//     -p 127.0.0.1:8081:8081).
//   - The guide's rich rule per openBIS address (RulesFor), and for 8000 a
//     rich rule without source (RuleConfig{Port: 8000}): they admit the
//     traffic that reaches the host's INPUT instead of Docker's DNAT, which
//     is all IPv6 traffic (docker-proxy listens on [::] when Docker's IPv6
//     is off; measured: without them IPv6 clients reach neither port) and
//     IPv4 in the moment after a firewalld reload.
//   - PortGuard: firewalld direct rules in raw PREROUTING, before Docker's
//     DNAT, accept COMM from each openBIS address and drop it from
//     everywhere else but loopback (IPv4 and IPv6). They match the host
//     port COMM, as the admin writes it.
//   - LoopbackGuard: a direct rule dropping 127.0.0.0/8 arriving on any
//     interface but lo, so a neighbour cannot route to the loopback-
//     published ports (newer Docker adds the same rule itself).
//
// Direct rules are permanent, so they survive firewalld reloads and reboots;
// a reload flushes Docker's own iptables rules, which Docker re-adds within
// seconds on firewalld's Reloaded signal.
package firewalld
