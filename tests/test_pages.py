def test_unknown_pages_get_a_styled_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "There is nothing at this address" in response.text
    assert "/static/css/app.css" in response.text


def test_forbidden_pages_get_a_styled_403(client, auth, make_user):
    auth.login(make_user("member"))
    response = client.get("/settings/users")
    assert response.status_code == 403
    assert "Your role does not allow this page" in response.text


def test_unexpected_errors_get_a_styled_500_without_details(app, client):
    app.testing = False

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = client.get("/boom")
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.text
    assert "secret internals" not in response.text


def test_styles_are_served_locally_and_pages_fit_a_phone(client):
    page = client.get("/login").text
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in page
    assert "http://" not in page.replace("http://sendauth.test", "") and "https://" not in page
    with client.get("/static/css/app.css") as css:
        assert css.status_code == 200
        assert "@media (max-width" in css.text
