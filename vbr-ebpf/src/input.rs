//! Ingress of one frame on the XDP path (br_input.c): validate, classify the VLAN, learn the
//! source, look the destination up, then forward or flood — or hand the frame to the skb path
//! when native XDP cannot reach where it goes.
use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use vbr_common::{
    event::EventKind,
    port::{
        POLICY_HAIRPIN, POLICY_LOCAL_STACK, POLICY_VIA_UPLINK, PORT_F_BARE_UNICAST, PortInfo,
        PortMode,
    },
    stats::Reason,
    vlan::{ETH_P_8021Q, ETH_P_VBR_FLOOD},
};

use crate::{
    batch, event,
    fdb::{self, Destination, Learning},
    flow::Flow,
    forward,
    maps::INFO,
    parse::{self, is_multicast, is_zero},
    policy,
    ports::Ports,
    stats::{self, Direction},
    vlan,
};

/// The XDP action for the frame and the reason it is counted under. A known unicast whose flow
/// this CPU sent before, with nothing changed since, is sent the same way at once (see `flow`).
#[inline(always)]
pub fn handle_frame(ctx: &XdpContext) -> (u32, Reason) {
    let ingress = ctx.ingress_ifindex() as u32;
    let flow = Flow::of(ctx, ingress);
    let sent = match flow.as_ref().and_then(Flow::cached) {
        Some(cached) => forward::as_cached(ctx, cached),
        None => {
            let now = fdb::now();
            let ports = Ports::new(now);
            let Some(port) = ports.get(ingress) else {
                return (xdp_action::XDP_PASS, Reason::PassNotPort);
            };
            switch_frame(ctx, &ports, ingress, port, now, flow.as_ref())
        }
    };
    sent.unwrap_or_else(|reason| match reason {
        Reason::PassToSkb | Reason::PassLinkLocal | Reason::PassToStack => {
            (xdp_action::XDP_PASS, reason)
        }
        _ => (xdp_action::XDP_DROP, reason),
    })
}

/// Everything but the drops and hand-overs, which come back as `Err(reason)`. A known unicast
/// sent is recorded in its `flow`'s slot, unless learning is not settled yet or the decision
/// read more than `fdb` and `ports` (the uplink a vepa, private or passthru port sends to is
/// in `info`).
#[inline(always)]
fn switch_frame(
    ctx: &XdpContext,
    ports: &Ports,
    ingress: u32,
    port: &PortInfo,
    now: u64,
    flow: Option<&Flow>,
) -> Result<(u32, Reason), Reason> {
    let eth = parse::eth_header(ctx)?;
    let (src, dst, ether_type) = (eth.src_addr, eth.dst_addr, u16::from_be(eth.ether_type));
    if is_multicast(&src) || is_zero(&src) {
        return Err(Reason::DropInvalidSource);
    }
    // The flood mark never comes from outside: neither as the ethertype nor behind an 802.1Q
    // tag, where egress would find it once the tag is popped.
    if ether_type == ETH_P_VBR_FLOOD
        || (ether_type == ETH_P_8021Q && parse::inner_ether_type(ctx) == Some(ETH_P_VBR_FLOOD))
    {
        return Err(Reason::DropMalformed);
    }
    policy::link_local(&dst)?;
    // Learn only after ingress filtering, as br_handle_frame_finish does.
    let frame = vlan::classify(ctx, ether_type, port)?;
    let learning = policy::learn_source(port, ingress, src, frame.vid, now)?;
    // Native XDP can only redirect to devices that take XDP frames; generic XDP (skb-backed)
    // reaches any device, and queues nothing for a flush.
    let native = port.mode == PortMode::XdpNative as u8;
    // The port's unicast may skip the devmap program, and its floods may take the skb path.
    let bare_unicast = native && port.flags & PORT_F_BARE_UNICAST != 0;
    let destination = fdb::destination(dst, frame.vid, ingress, port.has(POLICY_HAIRPIN), now)?;
    match policy::steer(port, destination)? {
        Destination::Port(egress) => {
            let target = ports.get(egress).ok_or(Reason::DropRedirect)?;
            policy::unicast_allowed(port, target)?;
            if native && target.mode != PortMode::XdpNative as u8 {
                return Err(Reason::PassToSkb);
            }
            stats::add_port(Direction::Rx, port, frame.vid, parse::len(ctx));
            let sent = forward::to_port(ctx, &frame, egress, target, bare_unicast)?;
            if learning == Learning::Settled
                && !port.has(POLICY_VIA_UPLINK)
                && let Some(flow) = flow
            {
                flow.fill(egress, frame.vid, port, target, bare_unicast);
            }
            Ok(sent)
        }
        Destination::Flood { missed } => {
            // SAFETY: the pointer comes from a successful map lookup.
            let skb_ports = INFO
                .get_ptr(0)
                .is_some_and(|info| unsafe { (*info).skb_ports } != 0);
            if (native && skb_ports) || port.has(POLICY_LOCAL_STACK) {
                return Err(Reason::PassToSkb);
            }
            // Finished here, the copies may skip the devmap program as unicast does, if the
            // batch lets finished frames do so (claiming it for them).
            let finished = bare_unicast
                .then(|| forward::finished_flood(port, ingress, &frame, &dst, now))
                .flatten()
                .filter(|_| batch::finished_may_skip_egress());
            if finished.is_none() && bare_unicast && batch::flood_must_take_skb_path() {
                return Err(Reason::PassToSkb);
            }
            stats::add_port(Direction::Rx, port, frame.vid, parse::len(ctx));
            if missed {
                event::emit(EventKind::Missed, dst, frame.vid, ingress, 0);
            }
            forward::flood(ctx, port, ingress, &frame, finished)
        }
    }
}
