//! Several hosts on one machine: a network namespace per host, each joined to a bridge in
//! the root namespace by a veth pair, so tests can cut one host off (a partition) and
//! heal it. Needs root and iproute2 (`ip`); a test that cannot make them fails, it does
//! not skip. Everything is removed on drop.

use std::process::Command;

/// One host: the namespace processes run in, and its address on the bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// The namespace (`ip netns exec <netns> ...`).
    pub netns: String,
    /// Its address, reachable from the root namespace and the other hosts.
    pub ip: String,
    /// The root side of its veth pair: down is the host cut off.
    link: String,
}

/// A set of hosts on one bridge.
#[derive(Debug)]
pub struct Hosts {
    bridge: String,
    /// Every host, in order.
    pub hosts: Vec<Host>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (install iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Hosts {
    /// Makes `n` hosts on a bridge of their own (`10.199.<k>.0/24`, the first free `k`, so
    /// tests running at once do not meet). Panics, with what to install, when it cannot.
    pub fn make(n: usize) -> Self {
        for k in 0..250u32 {
            let bridge = format!("gb{k}");
            // Creating the bridge claims the subnet: it fails if another test holds it.
            if ip(&["link", "add", &bridge, "type", "bridge"]).is_err() {
                continue;
            }
            let mut made = Self {
                bridge,
                hosts: Vec::new(),
            };
            if let Err(e) = made.populate(k, n) {
                panic!(
                    "cannot make network namespaces for the test's hosts (root and iproute2 \
                     needed: apt-get install iproute2): {e}"
                );
            }
            return made;
        }
        panic!(
            "cannot make a bridge for the test's hosts (root and iproute2 needed: apt-get \
             install iproute2), or 250 are taken"
        );
    }

    fn populate(&mut self, k: u32, n: usize) -> Result<(), String> {
        let b = self.bridge.clone();
        ip(&["addr", "add", &format!("10.199.{k}.1/24"), "dev", &b])?;
        ip(&["link", "set", &b, "up"])?;
        for i in 0..n {
            let netns = format!("guild-{b}-n{i}");
            let (link, peer) = (format!("{b}v{i}"), format!("{b}p{i}"));
            let addr = format!("10.199.{k}.{}", 10 + i);
            ip(&["netns", "add", &netns])?;
            // Pushed before it is complete, so a failure halfway still cleans it up.
            self.hosts.push(Host {
                netns: netns.clone(),
                ip: addr.clone(),
                link: link.clone(),
            });
            ip(&["link", "add", &link, "type", "veth", "peer", "name", &peer])?;
            ip(&["link", "set", &peer, "netns", &netns])?;
            ip(&["link", "set", &link, "master", &b])?;
            ip(&["link", "set", &link, "up"])?;
            let inside = |args: &[&str]| {
                let mut all = vec!["netns", "exec", netns.as_str(), "ip"];
                all.extend_from_slice(args);
                ip(&all)
            };
            inside(&["addr", "add", &format!("{addr}/24"), "dev", &peer])?;
            inside(&["link", "set", &peer, "up"])?;
            inside(&["link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// Cuts host `i` off from every other host and from the root namespace.
    pub fn partition(&self, i: usize) {
        ip(&["link", "set", &self.hosts[i].link, "down"]).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Joins host `i` again.
    pub fn heal(&self, i: usize) {
        ip(&["link", "set", &self.hosts[i].link, "up"]).unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for h in &self.hosts {
            let _ = ip(&["link", "del", &h.link]);
            let _ = ip(&["netns", "del", &h.netns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}
