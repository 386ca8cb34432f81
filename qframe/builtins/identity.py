"""The module's identity for the HES: the configured device id, else the modem's IMEI."""


def device_id(configured=""):
    """configured if set, else `modem.getDevImei()`, else "unknown" (never raises)."""
    if configured:
        return configured
    try:
        import modem
        imei = modem.getDevImei()
    except Exception:
        imei = None
    return imei if isinstance(imei, str) and imei else "unknown"
