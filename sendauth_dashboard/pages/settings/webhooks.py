"""Settings → Webhooks (admins): endpoints the help desk's tools are told through, each with
its secret (shown once), rotation, a test event, its health and its delivery log."""
from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectMultipleField, StringField, SubmitField, widgets

from ...extensions import db
from ...models import WebhookMessage
from ...services.webhooks import endpoints, queue
from ..auth import role_required
from ..forms import apply_service_error, choices
from . import bp


class EndpointForm(FlaskForm):
    url = StringField("URL", description="Where the events are posted: https://, a public "
                                         "address (e.g. https://tickets.example.com/hooks).")
    description = StringField("Description", description="What receives them, for you.")
    events = SelectMultipleField(
        "Events", choices=choices({t: t for t in endpoints.SUBSCRIBABLE}),
        widget=widgets.ListWidget(prefix_label=False), option_widget=widgets.CheckboxInput(),
        description="The events this endpoint is sent.")
    enabled = BooleanField("Enabled", default=True)
    submit = SubmitField("Save")


class ActionForm(FlaskForm):
    """The buttons (rotate, delete, test, replay): a CSRF token and nothing else."""


def _endpoint(endpoint_id):
    endpoint = endpoints.find(endpoint_id)
    if endpoint is None:
        abort(404)
    return endpoint


@bp.route("/webhooks", methods=["GET", "POST"])
@role_required("admin")
def webhooks():
    form = EndpointForm()
    if form.validate_on_submit():
        try:
            endpoint, secret = endpoints.create(form.url.data, form.description.data,
                                                form.events.data, form.enabled.data,
                                                actor=current_user)
            db.session.commit()
        except endpoints.EndpointError as exc:
            db.session.rollback()
            apply_service_error(form, exc, fallback_field="url")
        else:
            return render_template("settings/webhook_secret.html", endpoint=endpoint,
                                   secret=secret, made=True)
    return render_template("settings/webhooks.html", form=form,
                           endpoints=endpoints.every_endpoint()), 400 if form.errors else 200


@bp.route("/webhooks/<int:endpoint_id>", methods=["GET", "POST"])
@role_required("admin")
def webhook(endpoint_id):
    endpoint = _endpoint(endpoint_id)
    form = EndpointForm(data={"url": endpoint.url, "description": endpoint.description,
                              "events": endpoint.event_types, "enabled": endpoint.enabled})
    if form.validate_on_submit():
        try:
            changes = endpoints.update(endpoint, form.url.data, form.description.data,
                                       form.events.data, form.enabled.data, actor=current_user)
            db.session.commit()
        except endpoints.EndpointError as exc:
            db.session.rollback()
            apply_service_error(form, exc, fallback_field="url")
        else:
            flash("Saved: " + "; ".join(changes) + "." if changes else "Nothing changed.",
                  "success" if changes else "info")
            return redirect(url_for("settings.webhook", endpoint_id=endpoint.id))
    return render_template(
        "settings/webhook.html", form=form, endpoint=endpoint, actions=ActionForm(),
        messages=endpoints.messages_of(endpoint), attempts=endpoints.log_of(endpoint)), \
        400 if form.errors else 200


@bp.post("/webhooks/<int:endpoint_id>/rotate")
@role_required("admin")
def rotate_webhook_secret(endpoint_id):
    endpoint = _endpoint(endpoint_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    secret = endpoints.rotate(endpoint, actor=current_user)
    db.session.commit()
    return render_template("settings/webhook_secret.html", endpoint=endpoint, secret=secret,
                           made=False)


@bp.post("/webhooks/<int:endpoint_id>/delete")
@role_required("admin")
def delete_webhook(endpoint_id):
    endpoint = _endpoint(endpoint_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    url = endpoint.url
    endpoints.delete(endpoint, actor=current_user)
    db.session.commit()
    flash(f"Deleted the endpoint {url} and its delivery log.", "success")
    return redirect(url_for("settings.webhooks"))


@bp.post("/webhooks/<int:endpoint_id>/test")
@role_required("admin")
def test_webhook(endpoint_id):
    endpoint = _endpoint(endpoint_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    queue.queue_test(endpoint)
    db.session.commit()
    flash("A webhook.test event is on its way; its answer appears in the log below.", "success")
    return redirect(url_for("settings.webhook", endpoint_id=endpoint.id))


@bp.post("/webhooks/<int:endpoint_id>/deliveries/<int:message_id>/replay")
@role_required("admin")
def replay_webhook(endpoint_id, message_id):
    endpoint = _endpoint(endpoint_id)
    message = db.session.get(WebhookMessage, message_id)
    if message is None or message.endpoint_id != endpoint.id or \
            not ActionForm().validate_on_submit():
        abort(404 if message is None or message.endpoint_id != endpoint.id else 400)
    if queue.replay(message):
        db.session.commit()
        flash(f"Sending {message.msg_id} again, with the same webhook-id.", "success")
    else:
        flash("That delivery is still queued or being sent.", "info")
    return redirect(url_for("settings.webhook", endpoint_id=endpoint.id))
