//! The network loop: smoltcp over the platform's NIC, serving [`services`] until the
//! host's driver says QUIT (or, with benchmarks selected, stays silent too long).
//!
//! A NIC can go away while it serves (netfront's back end detached by the toolstack):
//! each turn of the loop asks it ([`drivers::nic::Nic::check_link`], a flag read unless
//! its control path reported something), and once it is gone the loop prints `NET down
//! reason=...` and returns, so the rest of the boot goes on to `DONE`.
//!
//! Between polls the CPU halts. Before halting, the loop re-arms the NIC's receive
//! interrupt and sets the platform timer to smoltcp's next deadline, so it wakes for a
//! frame or a TCP timer, whichever comes first. A NIC without an interrupt is polled
//! every millisecond.
//!
//! With the `lazy-timer` lever (`net=lazy-timer`, off by default) the timer is
//! programmed only when it must fire earlier than it is set to (or has fired): on Xen
//! each programming is a hypercall, and on a request/response exchange the next
//! deadline is nearly always the same far one. Waking earlier than needed costs one more
//! poll and a programming then. It is opt-in because its own early wake-ups move the
//! exits per interrupt that xen_net's load checks were written for (commit e2e50dd).

mod device;
pub mod levers;
mod services;

use crate::platform::Platform;
use alloc::vec;
use arch::irqflag as interrupts;
use arch::platform::ExitStatus;
use device::NicDevice;
use drivers::nic::NicError;
use proto::cmdline::{NetLever, Options, DEFAULT_IP};
use proto::lines::NetDown;
use proto::netctl::CONTROL_PORT;
use services::{Outcome, Services};
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpCidr, Ipv4Address};

/// Longest sleep between polls with a NIC interrupt armed.
const MAX_SLEEP_NS: u64 = 50_000_000;
/// Sleep between polls of a NIC without interrupt.
const POLL_NS: u64 = 1_000_000;
/// Longest wait, after answering QUIT, for the host to acknowledge the answer.
const QUIT_LINGER_NS: u64 = 2_000_000_000;

fn instant(ns: u64) -> Instant {
    Instant::from_micros((ns / 1000) as i64)
}

/// Serves the network. With benchmarks selected it ends when the host says QUIT or after
/// `netwait` seconds without a word from it; with `bench=none` it runs until QUIT.
pub fn serve(opts: &Options, p: &'static Platform) -> ExitStatus {
    let serving_only = opts.bench.is_empty();
    let mut guard = p.nic.lock();
    let Some(nic) = guard.as_mut() else {
        if serving_only {
            kprintln!("ERROR net: no network device to serve on");
            return ExitStatus::Failure;
        }
        kprintln!("SKIP net reason=no-nic");
        return ExitStatus::Success;
    };
    let mac = nic.mac();
    let mut dev = NicDevice::new(nic.as_mut());
    let mut config = Config::new(EthernetAddress(mac).into());
    config.random_seed = arch::cpu::rdtsc();
    let mut iface = Interface::new(config, &mut dev, instant(p.clock.now_ns()));
    let ip = opts.ip.or(p.nic_ip).unwrap_or(DEFAULT_IP);
    let [a, b, c, d] = ip.addr;
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(Ipv4Address::new(a, b, c, d).into(), ip.prefix));
    });
    let mut sockets = SocketSet::new(vec![]);
    let mut services = Services::new(&mut sockets, &levers::Buffers::of(opts.net));
    kprintln!(
        "NET ready ip={a}.{b}.{c}.{d}/{} mac={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} echo=7/udp,7/tcp discard=9/tcp,9/udp source=19/tcp control={CONTROL_PORT}/tcp levers={}",
        ip.prefix, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], opts.net.on_list()
    );
    let lazy_timer = opts.net.on(NetLever::LazyTimer);

    let idle_limit = opts.netwait_s as u64 * 1_000_000_000;
    let mut last_activity = p.clock.now_ns();
    let mut halted_ticks = 0u64;
    // Once QUIT is answered: the time by which the host must have acknowledged the BYE.
    let mut quit_by = None;
    // The timer's deadline as last programmed (0: none yet), for the lazy timer.
    let mut timer_at = 0u64;
    loop {
        // A flag read while the device is there: no exit on the hot path.
        if let Err(e) = dev.nic().check_link() {
            let reason = match e {
                NicError::Gone(g) => g.word(),
                _ => "broken",
            };
            kprintln!("{}", NetDown { reason });
            return ExitStatus::Success;
        }
        let now = p.clock.now_ns();
        iface.poll(instant(now), &mut dev, &mut sockets);
        if let Some(deadline) = quit_by {
            // A frame still in the NIC when the machine powers off may never reach the
            // host, so the run ends only once the host has acknowledged the FIN that
            // follows the BYE (or, with a silent host, at the deadline).
            if services.farewell_acknowledged(&sockets) {
                return ExitStatus::Success;
            }
            if now >= deadline {
                log::warn!("the host did not acknowledge BYE within {} s", QUIT_LINGER_NS / 1_000_000_000);
                return ExitStatus::Success;
            }
        } else {
            match services.run(&mut sockets, p, dev.nic().stats(), p.tsc.ticks_to_ns(halted_ticks)) {
                Outcome::Quit => quit_by = Some(now.saturating_add(QUIT_LINGER_NS)),
                Outcome::Activity => last_activity = now,
                Outcome::Idle => {}
            }
            // The clock may step back (Xen's TSC-stable pvclock is not clamped): saturate.
            if !serving_only && now.saturating_sub(last_activity) > idle_limit {
                kprintln!(
                    "ERROR net: no word from the benchmark driver on port {CONTROL_PORT} for {} s",
                    opts.netwait_s
                );
                return ExitStatus::Failure;
            }
        }
        if iface.poll_delay(instant(now), &sockets) == Some(smoltcp::time::Duration::ZERO) {
            continue;
        }
        interrupts::disable();
        let nic = dev.nic();
        let armed = nic.enable_rx_interrupt();
        if nic.can_receive() {
            interrupts::enable();
            continue;
        }
        let wait = iface
            .poll_delay(instant(now), &sockets)
            .map_or(u64::MAX, |d| d.total_micros().saturating_mul(1000))
            .min(if armed { MAX_SLEEP_NS } else { POLL_NS })
            // Interrupt moderation (irqmod=) holds the interrupt off: poll when it ends.
            .min(nic.rx_interrupt_held_until_ns().map_or(u64::MAX, |t| t.saturating_sub(now)))
            .min(quit_by.map_or(u64::MAX, |d: u64| d.saturating_sub(now)));
        let deadline = now.saturating_add(wait);
        if !lazy_timer || timer_at <= now || deadline < timer_at {
            p.timer.set_deadline_ns(deadline);
            timer_at = deadline;
        }
        // Time halted, for the busy share the host computes (STATS idle_ns): from the halt
        // to the return of the interrupt that ended it.
        let t0 = arch::cpu::rdtsc();
        arch::cpu::idle();
        halted_ticks = halted_ticks.saturating_add(arch::cpu::rdtsc().saturating_sub(t0));
    }
}
