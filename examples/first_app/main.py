"""My first qframe app: a gateway between the meter and the head-end (docs/FIRST_APP.md).

The module runs /usr/main.py at power-on: it builds the Application from /usr/dev.json,
registers the extensions (gateway.py) and starts them with mainloop().
"""
from usr.qframe import Application
from usr.gateway import client, uart


def create_app(name="first-app", config_path="/usr/dev.json"):
    app = Application(name)
    app.config.from_json(config_path)
    uart.init_app(app)          # app.uart: the meter link (dev.json UART)
    client.init_app(app)        # app.client: the HES link (dev.json TCP_SERVER)
    return app


app = create_app()

if __name__ == "__main__":
    app.mainloop()
