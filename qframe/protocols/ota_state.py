"""What the OTA updater does at boot, decided from its saved phase and what is on flash (no I/O).

Phases (saved in /usr/.ota/state.json before each step, so a power cut resumes or undoes it):

    idle        nothing in progress
    download    fetching and verifying files into /usr/.ota/new (resumed with HTTP Range)
    ready       every file verified; next: back up what it replaces, stage, flag, reboot
    activating  files staged in /usr/.updater and the app_fota flag set; the firmware moves
                them into /usr at the next boot
    trial       the new version runs and must report healthy within the health window, in at
                most `trial_boots` boots
    rollback    the previous version is staged back; done once /usr holds it again

boot_action() answers, at boot and before the app starts, one of:

    RUN          start the app as it is
    START_TRIAL  the new files are in place: delete what the update drops, enter `trial`
    COUNT_BOOT   another boot in `trial`: count it and start the app
    REFLAG       the staged files are complete but were not applied: set the flag, reboot
    ROLLBACK     stage the previous version, set the flag, reboot
    ROLLED_BACK  /usr holds the previous version again: delete what the update added, `idle`
"""
PHASES = ("idle", "download", "ready", "activating", "trial", "rollback")

RUN = "run"
START_TRIAL = "start_trial"
COUNT_BOOT = "count_boot"
REFLAG = "reflag"
ROLLBACK = "rollback"
ROLLED_BACK = "rolled_back"


def boot_action(phase, boots, trial_boots, target_on_usr, staged_complete, prev_on_usr):
    """The action for this boot.

    boots: boots counted in `trial` so far; trial_boots: how many it may take.
    target_on_usr: every file of the update is in /usr with its manifest's SHA-256.
    staged_complete: /usr/.updater holds every file still to be applied, verified.
    prev_on_usr: every file the update replaced is in /usr with its backed-up SHA-256.
    """
    if phase == "activating":
        if target_on_usr:
            return START_TRIAL
        if staged_complete:
            return REFLAG
        return ROLLBACK             # neither version whole: the backup is the way back
    if phase == "trial":
        if boots >= trial_boots:
            return ROLLBACK         # it took its boots without reporting healthy
        return COUNT_BOOT
    if phase == "rollback":
        if prev_on_usr:
            return ROLLED_BACK
        return ROLLBACK
    return RUN
