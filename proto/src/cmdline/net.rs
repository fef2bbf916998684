//! The network levers of issue 14 as types: [`NetLever`] names one, [`NetLevers`] is the
//! set that is on. `net=` on the command line writes a set as its difference from the
//! default (`no-offload,lazy-timer`, [`NetLevers`]' `Display`, read back by the parent
//! module's `parse`); the kernel's `NET ready` line lists the levers that are on
//! (`levers=offload,batch,suppress,wscale`, [`NetLevers::on_list`]). The kernel and the
//! harness name a lever only through [`NetLever`], so a misspelt one does not compile.

use super::{Choice, CmdlineError};
use core::fmt;

choice! {
    /// One network lever of `net=`, in the order they are written. Each is on by default
    /// but the lazy timer ([`NetLever::default_on`]).
    pub enum NetLever {
        /// Receive offloads: the netfront offers its back end scatter-gather, TCPv4 GSO and
        /// checksum offload; virtio-net accepts merged buffers, `GUEST_CSUM` and
        /// `GUEST_TSO4`.
        Offload = "offload",
        /// The netfront gives receive buffers back in batches with one notification.
        Batch = "batch",
        /// Both directions hold notifications off through `req_event`/`rsp_event` (off:
        /// every publication notifies and every received packet asks for an event).
        Suppress = "suppress",
        /// The bulk sockets' buffers exceed 64 KiB, so smoltcp offers TCP window scaling
        /// (off: every TCP buffer is at most 65535 bytes, no scaling).
        Wscale = "wscale",
        /// The network loop programs the timer only to wake earlier than it is set to.
        LazyTimer = "lazy-timer",
    }
}

// One bit of a `NetLevers` per lever.
const _: () = assert!(NetLever::TABLE.len() <= u8::BITS as usize);

impl NetLever {
    /// True if the lever is on when `net=` does not name it (all but the lazy timer,
    /// which is opt-in).
    pub const fn default_on(self) -> bool {
        !matches!(self, NetLever::LazyTimer)
    }

    /// The lever's bit in a [`NetLevers`]: its place in [`Choice::TABLE`], which the
    /// `choice!` declaration lists in variant order.
    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for NetLever {
    /// The lever's word on the command line and on the `NET ready` line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which network levers are on (`net=`): a set of [`NetLever`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetLevers(u8);

impl NetLevers {
    /// Every lever that is [`NetLever::default_on`]: all but the lazy timer.
    pub const DEFAULT: NetLevers = {
        let mut set = NetLevers(0);
        let mut i = 0;
        while i < NetLever::TABLE.len() {
            let lever = NetLever::TABLE[i].1;
            set = set.with(lever, lever.default_on());
            i += 1;
        }
        set
    };

    /// True if `lever` is on.
    pub const fn on(self, lever: NetLever) -> bool {
        self.0 & lever.bit() != 0
    }

    /// This set with `lever` turned on or off.
    pub const fn with(self, lever: NetLever, on: bool) -> NetLevers {
        if on {
            NetLevers(self.0 | lever.bit())
        } else {
            NetLevers(self.0 & !lever.bit())
        }
    }

    /// The levers that are on, in [`NetLever`] order.
    pub fn levers_on(self) -> impl Iterator<Item = NetLever> {
        NetLever::TABLE.iter().map(|&(_, lever)| lever).filter(move |&lever| self.on(lever))
    }

    /// The levers that are on as the `NET ready` line's `levers=` writes them.
    pub fn on_list(self) -> OnList {
        OnList(self)
    }
}

impl fmt::Display for NetLevers {
    /// `default`, or the levers that differ from it (`no-offload,lazy-timer`), which
    /// [`parse`](super::parse) reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == NetLevers::DEFAULT {
            return f.write_str("default");
        }
        let mut first = true;
        for &(name, lever) in NetLever::TABLE {
            let on = self.on(lever);
            if on != lever.default_on() {
                f.write_str(if first { "" } else { "," })?;
                f.write_str(if on { "" } else { "no-" })?;
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// The levers that are on, comma-separated in [`NetLever`] order, `none` if none: the
/// `levers=` of the kernel's `NET ready` line (`levers=offload,batch,suppress,wscale`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OnList(NetLevers);

impl fmt::Display for OnList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut any = false;
        for lever in self.0.levers_on() {
            f.write_str(if any { "," } else { "" })?;
            f.write_str(lever.name())?;
            any = true;
        }
        if !any {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// What `net=` accepts, for its error; a test checks that it lists [`NetLever::ACCEPTED`].
const ACCEPTED: &str =
    "default, or a comma list of offload, batch, suppress, wscale, lazy-timer, each turned off with no-";

/// Parses `net=`'s value: `default`, or a comma list of levers, each turned off by a `no-`
/// prefix and applied to the default in order (a later word wins).
pub(super) fn parse_net(value: &str) -> Result<NetLevers, CmdlineError<'_>> {
    if value == "default" {
        return Ok(NetLevers::DEFAULT);
    }
    let mut set = NetLevers::DEFAULT;
    for item in value.split(',') {
        let (name, on) = item.strip_prefix("no-").map_or((item, true), |n| (n, false));
        let lever = NetLever::from_name(name).ok_or(CmdlineError::BadValue {
            option: "net",
            value: item,
            accepted: ACCEPTED,
        })?;
        set = set.with(lever, on);
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::super::{parse, Options};
    use super::*;
    use alloc::format;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    #[test]
    fn every_lever_round_trips_by_name() {
        assert_eq!(NetLever::ACCEPTED, "offload, batch, suppress, wscale, lazy-timer");
        for &(name, lever) in NetLever::TABLE {
            assert_eq!(lever.name(), name);
            assert_eq!(lever.to_string(), name);
            assert_eq!(NetLever::from_name(name), Some(lever), "{name}");
        }
        assert_eq!(NetLever::from_name("gso"), None);
        assert_eq!(NetLever::from_name("Offload"), None, "words are exact");
        // The bits are distinct: each lever alone is a different set.
        let singles: Vec<NetLevers> = NetLever::TABLE.iter().map(|&(_, l)| NetLevers(0).with(l, true)).collect();
        for (i, a) in singles.iter().enumerate() {
            assert_eq!(a.levers_on().collect::<Vec<_>>(), [NetLever::TABLE[i].1]);
            assert!(singles[i + 1..].iter().all(|b| b != a));
        }
    }

    #[test]
    fn default_is_all_but_the_lazy_timer() {
        use NetLever::*;
        assert_eq!(NetLevers::DEFAULT.levers_on().collect::<Vec<_>>(), [Offload, Batch, Suppress, Wscale]);
        assert!(!NetLevers::DEFAULT.on(LazyTimer) && NetLevers::DEFAULT.on(Suppress));
        let d = parse("net=default").unwrap();
        assert_eq!(d.net, NetLevers::DEFAULT);
        assert_eq!(d.to_string(), "mode=auto bench=all", "the default is not written");
    }

    #[test]
    fn each_lever_flipped_renders_and_parses_back() {
        for &(name, lever) in NetLever::TABLE {
            let flipped = NetLevers::DEFAULT.with(lever, !lever.default_on());
            assert_eq!(flipped.on(lever), !lever.default_on());
            let o = Options { net: flipped, ..Options::default() };
            let word = if flipped.on(lever) { name.to_string() } else { format!("no-{name}") };
            assert_eq!(o.to_string(), format!("mode=auto bench=all net={word}"));
            assert_eq!(parse(&o.to_string()), Ok(o), "{name}");
            assert_eq!(flipped.levers_on().count(), if flipped.on(lever) { 5 } else { 3 });
            // Both ways, on and off, for every lever.
            for on in [false, true] {
                let set = NetLevers::DEFAULT.with(lever, on);
                assert_eq!(parse_net(&set.to_string()), Ok(set), "{name} {on}");
            }
        }
        let all_off = parse("net=no-offload,no-batch,no-suppress,no-wscale").unwrap().net;
        assert_eq!(all_off.levers_on().count(), 0);
        assert_eq!(all_off.to_string(), "no-offload,no-batch,no-suppress,no-wscale");
        // Later words win, as elsewhere on the line.
        assert!(parse("net=no-batch,batch").unwrap().net.on(NetLever::Batch));
    }

    #[test]
    fn net_ready_list_keeps_its_format() {
        // Hosts and recorded consoles read `levers=` in exactly this form.
        assert_eq!(NetLevers::DEFAULT.on_list().to_string(), "offload,batch,suppress,wscale");
        let switched = NetLevers::DEFAULT.with(NetLever::Wscale, false).with(NetLever::LazyTimer, true);
        assert_eq!(switched.on_list().to_string(), "offload,batch,suppress,lazy-timer");
        assert_eq!(parse("net=no-offload,no-batch,no-suppress,no-wscale").unwrap().net.on_list().to_string(), "none");
    }

    #[test]
    fn unknown_lever_names_the_known_ones() {
        assert_eq!(ACCEPTED, format!("default, or a comma list of {}, each turned off with no-", NetLever::ACCEPTED));
        assert_eq!(
            parse("net=no-gso").unwrap_err().to_string(),
            "invalid value 'no-gso' for net= (accepted: default, or a comma list of offload, batch, suppress, \
             wscale, lazy-timer, each turned off with no-)"
        );
        assert_eq!(
            parse("net=offload,lazytimer").unwrap_err(),
            CmdlineError::BadValue { option: "net", value: "lazytimer", accepted: ACCEPTED }
        );
        for bad in ["", "no-", "offload,,batch", "no-default", "default,offload", "no-no-batch"] {
            assert!(matches!(parse_net(bad), Err(CmdlineError::BadValue { option: "net", .. })), "{bad:?}");
        }
    }
}
