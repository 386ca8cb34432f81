"""/usr/main.py: qframe's launcher. OTA updates never replace it; keep it this one call.
It runs the OTA boot check and arms the watchdog before the app (usr.app_main) is imported,
and rolls a new version back if it cannot start (qframe/launcher.py, docs/OTA.md)."""
from usr.qframe.launcher import launch

launch("usr.app_main", __name__ == "__main__")
