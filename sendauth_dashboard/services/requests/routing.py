"""The one routing rule: which channels notify a user of a new authentication request."""
from dataclasses import dataclass, field

from ... import channels


@dataclass(frozen=True)
class Route:
    channels: tuple
    # For each channel that will not be used, why not, in words a requestor can act on.
    skipped: dict = field(default_factory=dict)

    def explain(self, user):
        reasons = "; ".join(f"{channels.label(c)}: {why}" for c, why in self.skipped.items())
        return f"No channel can reach {user.name}. {reasons}."


def route(user, problems=None):
    """Every channel the user has on that the organisation has set up and enabled.

    So a user with PagerDuty on is still reached through their other channels while the
    PagerDuty integration is off. A channel also needs what reaches this user on it (a phone
    number for SMS, a member id for Slack). ``problems`` is ``organisation_problems()``, for
    routing many users at once.
    """
    chosen, skipped = [], {}
    for name in channels.names():
        if not user.wants(name):
            skipped[name] = "off in their messaging preferences"
            continue
        problem = (problems[name] if problems is not None else channels.problem(name)) \
            or channels.contact_problem(name, user)
        if problem:
            skipped[name] = problem
        else:
            chosen.append(name)
    return Route(tuple(chosen), skipped)


def organisation_problems():
    """For each channel, why the organisation cannot send through it now, or None."""
    return {name: channels.problem(name) for name in channels.names()}
