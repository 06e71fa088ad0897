"""Ticket lifecycle: backlog, first response, resolution, reopen (first-contact resolution)."""

from __future__ import annotations

from wallboard.fold import counters as c
from wallboard.fold.sketch import bin_of
from wallboard.fold.state import FCR_HORIZON_S, LiveState, Ticket
from wallboard.fold.windows import WindowSet
from wallboard.model import events as ev
from wallboard.model.events import Event


def fold_ticket(state: LiveState, windows: WindowSet, e: Event) -> None:
    """Apply one ticket event to the ticket's record and the queue's windows."""
    ticket_id = e.contact_id or ""
    ticket = state.tickets.get(ticket_id)
    if ticket is None:
        # Events can arrive before the creation we never saw (history before our journal).
        ticket = state.tickets[ticket_id] = Ticket(e.queue, None)
    etype, ts = e.type, e.ts
    if etype == ev.TICKET_STATUS:
        ticket.status = e.status or "open"  # the live backlog split only: no window counts it
        return
    if etype == ev.TICKET_CREATED:
        if ticket.created is not None:
            return  # the same ticket created twice under different event ids
        ticket.created, ticket.due = ts, e.due_ts
        windows.add(ts, [(c.TICKETS_CREATED, 1.0)])
    elif etype == ev.TICKET_FIRST_RESPONSE:
        if ticket.first_response is not None:
            return
        ticket.first_response = ts
        if ticket.created is None:
            windows.add(ts, [(c.FIRST_RESPONSES, 1.0)])
        else:
            frt = max(0.0, ts - ticket.created)
            windows.add(ts, [(c.FIRST_RESPONSES, 1.0), (c.FRT_SUM, frt)],
                        [(c.SKETCH_FRT, bin_of(frt), 1)])
    elif etype == ev.TICKET_RESOLVED:
        if ticket.resolved is not None:
            return
        ticket.resolved = ts
        state.ticket_resolved(ticket_id)
        deltas = [(c.TICKETS_RESOLVED, 1.0)]
        if ticket.resolutions == 0:
            deltas.append((c.FCR_RESOLVED, 1.0))  # first-contact resolution looks at the first
        ticket.resolutions += 1
        if ticket.created is None:
            windows.add(ts, deltas)
        else:
            took = max(0.0, ts - ticket.created)
            windows.add(ts, [*deltas, (c.RESOLUTION_SUM, took)],
                        [(c.SKETCH_RESOLUTION, bin_of(took), 1)])
    elif etype == ev.TICKET_REOPENED:
        if ticket.resolved is None:
            return
        first_reopen = ticket.resolutions == 1 and not ticket.reopened
        if first_reopen and ts - ticket.resolved <= FCR_HORIZON_S:
            # Lagged KPI: the first resolution stops counting as first-contact, in its bucket.
            windows.add(ticket.resolved, [(c.FCR_REOPENED, 1.0)])
        ticket.reopened = True
        ticket.resolved = None
        ticket.status = "open"  # reopened by a reply: the team's turn again
        state.ticket_reopened(ticket_id)
        windows.add(ts, [(c.TICKETS_REOPENED, 1.0)])
    elif etype == ev.TICKET_SLA_BREACHED:
        windows.add(ts, [(c.SLA_BREACHES, 1.0)])
