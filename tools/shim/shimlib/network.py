"""The cellular network as the shim simulates it: SIM, radio, registration, PDP context, CSQ,
DNS. A loss of registration or PDP calls dataCall's callback and aborts the live sockets."""
from shimlib import core, dispatch, sockets, threads

_attach_timer = None


def net_ready():
    """Data can flow: registered and the PDP context active."""
    return core.state["registered"] and core.state["pdp"]


def stage():
    """checkNet's (stage, subcode) now: (3, 1) ready, (1, 0) no SIM, (2, 0|2) not registered
    (2 while attaching), (3, 0) PDP context not active."""
    state = core.state
    if not state["sim"]:
        return (1, 0)
    if not state["registered"]:
        return (2, 2 if state["attaching"] else 0)
    if not state["pdp"]:
        return (3, 0)
    return (3, 1)


def _reachable():
    state = core.state
    return state["sim"] and state["modem_fun"] == 1 and not state["outage"]


def _datacall_event(active):
    core.count("datacall_events")
    dispatch.fire(core.callbacks.get("datacall"), (1, 1 if active else 0))


def _drop(errno=sockets.ECONNABORTED):
    """Registration lost: PDP down (dataCall callback), live sockets aborted."""
    with core.lock:
        was_pdp = core.state["pdp"]
        core.state["registered"] = False
        core.state["pdp"] = False
    if was_pdp:
        _datacall_event(False)
        sockets.abort_all(errno)
    core.changed()


def _attach():
    """Register and (auto) activate the PDP context if nothing prevents it."""
    with core.lock:
        core.state["attaching"] = False
        if not _reachable() or core.state["registered"]:
            return
        core.state["registered"] = True
        core.state["pdp"] = True
    _datacall_event(True)
    core.changed()


def _cancel_attach():
    global _attach_timer
    timer, _attach_timer = _attach_timer, None
    if timer is not None:
        timer.stop()
        core.untrack(timer)
    core.state["attaching"] = False


def _schedule_attach():
    global _attach_timer
    _cancel_attach()
    if not _reachable() or core.state["registered"]:
        return
    delay = core.state["attach_delay_ms"]
    if delay <= 0:
        _attach()
        return
    core.state["attaching"] = True
    timer = threads.Ticker(delay, False, _attach, "shim-attach")
    timer._shim_stop = timer.stop
    _attach_timer = timer
    core.track(timer)
    timer.start()


def set_network(up):
    """up=False: forced outage (registration and PDP lost, sockets aborted with
    ECONNABORTED); up=True: outage over, registered and PDP active at once."""
    core.state["outage"] = not up
    _cancel_attach()
    if up:
        _attach()
    else:
        _drop()
    core.changed()


def set_pdp(active):
    """PDP context 1 up/down (the network stays registered). False if it cannot come up."""
    if active:
        with core.lock:
            ok = core.state["registered"] and not core.state["pdp"]
            if ok:
                core.state["pdp"] = True
        if ok:
            _datacall_event(True)
        core.changed()
        return core.state["pdp"]
    with core.lock:
        was = core.state["pdp"]
        core.state["pdp"] = False
    if was:
        _datacall_event(False)
        sockets.abort_all(sockets.ECONNABORTED)
    core.changed()
    return True


def set_sim(present):
    """SIM inserted/removed: sim callback (1 in / 2 out) if detection is on; removal drops
    the network, insertion attaches after attach_delay_ms."""
    present = bool(present)
    if core.state["sim"] == present:
        return
    core.state["sim"] = present
    core.count("sim_events")
    if core.state["sim_det"][0]:
        dispatch.fire(core.callbacks.get("sim"), 1 if present else 2)
    if present:
        _schedule_attach()
    else:
        _cancel_attach()
        _drop()
    core.changed()


def set_modem_fun(fun):
    """As net.setModemFun: 0 or 4 radio off (network down), 1 on (attach after a delay)."""
    core.state["modem_fun"] = fun
    if fun == 1:
        _schedule_attach()
    else:
        _cancel_attach()
        _drop()
    core.changed()


def set_csq(n):
    core.update(csq=n)


def set_dns_fail(on):
    core.update(dns_fail=bool(on))
