//! [`kernel_main`]: from the boot stub to power-off.
//!
//! `arch::entry_point!` makes it what the PVH and PV stubs run, with the [`Start`] that
//! carries the loader's start info.
//!
//! Order matters: consoles and fault handlers first (so every later failure is
//! readable), then the boot info is copied out of loader memory, then the heap, page
//! tables and ACPI, then power control (so even a bad command line ends in a clean
//! failure shutdown), then the command line and the platform. `READY` follows the mode
//! report: the kernel is up, with its time from the entry point; benchmarks come after.

use crate::{bench, console, heap, net, platform, power};
use arch::hypervisor::Hypervisor;
use arch::platform::Console;
use arch::platform::ExitStatus;
use arch::start::Start;
use drivers::console::{DebugCon, Uart16550};
use proto::cmdline::{self, Choice, Fault};
use proto::lines::{ModeReport, Ready};

static DEBUGCON: DebugCon = DebugCon;

/// Prints one `ERROR` line and powers off with failure.
fn fail(args: core::fmt::Arguments<'_>) -> ! {
    kprintln!("ERROR {args}");
    power::off(ExitStatus::Failure)
}

arch::entry_point!(kernel_main);

/// Run by the PVH or the PV stub with what it was handed.
fn kernel_main(start: Start) -> ! {
    let entry_tsc = arch::cpu::rdtsc();
    // The PVH start sets up the CPU's own tables; the PV start (ring 3, where those
    // instructions fault) Xen's virtual IDT, its console and its memory.
    let (boot, com1, pv) = match start {
        Start::Pvh(s) => {
            let com1 = Uart16550::probe_com1().map(alloc_free_static);
            early_consoles(com1, None);
            arch::gdt::init();
            arch::trap::init();
            match s.boot_info() {
                Ok(b) => (b, com1, None),
                Err(e) => fail(format_args!("boot: not a PVH start ({e:?})")),
            }
        }
        Start::Pv(s) => {
            let (boot, guest) = platform::pv::start(s);
            (boot, None, Some(guest))
        }
    };
    let heap_bytes = match heap::init(&boot) {
        Ok(n) => n,
        Err(e) => fail(format_args!("memory: no usable heap: {e}")),
    };
    if pv.is_none() {
        arch::paging::init();
    }
    console::init_logger();
    // On Xen, the PV console joins before the first line, so boot timing can watch it.
    let (hv, xen, xen_console) = match &pv {
        Some(g) => (g.hypervisor, Some(g.xen), Some(Ok(g.console))),
        None => {
            let hv = Hypervisor::detect();
            let xen = platform::xen(&hv);
            let xen_console = xen.map(platform::xen_console);
            if let Some(Ok(c)) = xen_console {
                early_consoles(com1, Some(c));
            }
            (hv, xen, xen_console)
        }
    };
    log::info!(
        "hykernel {} image {} KiB, heap {} MiB, cmdline '{}'",
        env!("CARGO_PKG_VERSION"),
        heap::image_bytes() / 1024,
        heap_bytes >> 20,
        boot.cmdline()
    );
    if let Some(Err(e)) = xen_console {
        log::warn!("no Xen PV console: {e:?}");
    }
    if let Some(sig) = hv.other_signature() {
        log::info!("hypervisor '{sig}' offers no interface this kernel uses: reported as none");
    }
    let acpi = match arch::firmware::acpi(&boot) {
        _ if pv.is_some() => None, // a PV guest has no firmware tables (and set its power control)
        Ok(a) => Some(a),
        Err(e) => {
            log::warn!("no usable ACPI tables: {e:?}");
            None
        }
    };
    power::set(platform::power_control(xen, acpi.as_ref()));

    let opts = match cmdline::parse(boot.cmdline()) {
        Ok(o) => o,
        Err(e) => fail(format_args!("cmdline: {e}")),
    };
    let p = match platform::init(&opts, hv, xen, xen_console.and_then(Result::ok), acpi, pv.as_ref()) {
        Ok(p) => p,
        Err(e) => fail(format_args!("mode: {e}")),
    };
    console::set(p.consoles);
    let mut hv_name = alloc::string::String::new();
    let _ = p.hypervisor.describe(&mut hv_name);
    kprintln!(
        "{}",
        ModeReport {
            hypervisor: &hv_name,
            mode: p.mode.name(),
            irq: p.irq.name(),
            eoi: p.irq.eoi_name(),
            clock: p.clock.name(),
            timer: p.timer.name(),
            nic: p.nic_name,
            msi: p.irq.msi_name(),
        }
    );
    if opts.fault == Fault::PanicAfterMode {
        panic!("fault=panic-after-mode: the panic the harness's tests ask for");
    }
    arch::irqflag::enable();
    let boot_ns = p.tsc.ticks_to_ns(arch::cpu::rdtsc().wrapping_sub(entry_tsc));
    kprintln!("{}", Ready { boot_ns });

    bench::run_local(&opts, p);
    let status =
        if opts.bench.is_empty() || opts.bench.contains("net") { net::serve(&opts, p) } else { ExitStatus::Success };
    if status == ExitStatus::Success {
        kprintln!("DONE");
    }
    power::off(status)
}

/// The consoles until the platform chooses its own: COM1 where one answered, the debug
/// port (Xen's log, QEMU's debugcon), and `more` (Xen's PV console).
fn early_consoles(com1: Option<&'static Uart16550>, more: Option<&'static dyn Console>) {
    let mut list: [&'static dyn Console; 3] = [&DEBUGCON; 3];
    let mut n = 0;
    for c in [com1.map(|c| c as &'static dyn Console), Some(&DEBUGCON), more].into_iter().flatten() {
        list[n] = c;
        n += 1;
    }
    console::set(&list[..n]);
}

/// Moves a value into a leaked heap-free static slot (the heap is not up yet).
fn alloc_free_static(u: Uart16550) -> &'static Uart16550 {
    static SLOT: spin::Once<Uart16550> = spin::Once::new();
    SLOT.call_once(|| u)
}
