"""Every public name of QuecPython's QFrame (read from QuecPython/QFrame: qframe/*.py,
qframe/builtins/*.py, README.md, docs/en/API_Reference.md) exists under usr.qframe."""
from usr.qframe import Application

# module -> names QFrame defines there ("Class.attr" for a class attribute or method)
QFRAME_NAMES = {
    "usr.qframe": ["Application", "CurrentApp", "G", "AppExtensionABC", "TcpClient", "Uart"],
    "usr.qframe.core": ["Application", "AppExtensionABC", "CurrentApp", "G", "_AppCtxGlobals",
                        "OrderedDict", "LocalStorage", "ThreadPoolExecutor", "Lock",
                        "Application.append_extension", "Application.mainloop",
                        "AppExtensionABC.init_app", "AppExtensionABC.load"],
    "usr.qframe.globals": ["ContextVar", "ContextVar.set", "ContextVar.get", "_AppCtxGlobals",
                           "_AppCtxGlobals.get", "_AppCtxGlobals.set",
                           "_AppCtxGlobals.setdefault", "CurrentApp", "G"],
    "usr.qframe.collections": ["Singleton", "OrderedDict", "OrderedDict.init",
                               "OrderedDict.pop", "OrderedDict.keys", "OrderedDict.values",
                               "OrderedDict.items", "OrderedDict.setdefault",
                               "OrderedDict.update", "deepcopy", "LocalStorage",
                               "LocalStorage.from_json", "LocalStorage.save",
                               "LocalStorage.update", "LocalStorage.get"],
    "usr.qframe.threading": ["Lock", "Lock.acquire", "Lock.release", "Lock.locked", "Waiter",
                             "Waiter.acquire", "Waiter.release", "Condition", "Condition.wait",
                             "Condition.wait_for", "Condition.notify", "Condition.notify_all",
                             "Event", "Event.wait", "Event.set", "Event.clear", "Event.is_set",
                             "Semaphore", "Semaphore.acquire", "Semaphore.release",
                             "Semaphore.clear", "BoundedSemaphore", "Queue", "Queue.Full",
                             "Queue.Empty", "Queue.put", "Queue.get", "Queue.size",
                             "Queue.clear", "LifoQueue", "PriorityQueue",
                             "PriorityQueue.convert", "_Result", "Thread", "Thread.is_running",
                             "Thread.start", "Thread.stop", "Thread.run", "Thread.ident",
                             "Thread.get_current_thread_ident", "Task", "ThreadPoolExecutor",
                             "ThreadPoolExecutor.submit", "ThreadPoolExecutor.shutdown"],
    "usr.qframe.logging": ["Level", "Level.DEBUG", "Level.INFO", "Level.WARN", "Level.ERROR",
                           "Level.CRITICAL", "getLevelName", "getNameLevel", "BasicConfig",
                           "BasicConfig.getLogger", "BasicConfig.update", "BasicConfig.get",
                           "BasicConfig.set", "Logger", "Logger.log", "Logger.debug",
                           "Logger.info", "Logger.warn", "Logger.error", "Logger.critical",
                           "Logger.output_raw", "getLogger"],
    "usr.qframe.serial": ["Serial", "Serial.TimeoutError", "Serial.uart", "Serial.open",
                          "Serial.close", "Serial.write", "Serial.read"],
    "usr.qframe.qsocket": ["TcpSocket", "TcpSocket.TimeoutError", "TcpSocket.socket_type",
                           "TcpSocket.sock", "TcpSocket.connect", "TcpSocket.disconnect",
                           "TcpSocket.write", "TcpSocket.read", "TcpSocket.status_code",
                           "UdpSocket"],
    "usr.qframe.datetime": ["UtimeAdapter", "UtimeAdapter.get_local_time_tuple",
                            "UtimeAdapter.get_timestamp_from_time_tuple",
                            "UtimeAdapter.get_time_tuple_from_timestamp",
                            "UtimeAdapter.get_local_timezone_offset",
                            "UtimeAdapter.set_local_timezone_offset", "TimeZone", "UTC",
                            "TimeDelta", "TimeDelta.total_seconds", "is_leap_year", "DateTime",
                            "DateTime.weekday", "DateTime.yearday", "DateTime.timetuple",
                            "DateTime.timestamp", "DateTime.fromtimestamp", "DateTime.utcnow",
                            "DateTime.now", "DateTime.replace", "DateTime.astimezone"],
    "usr.qframe.led": ["Led", "Led.on", "Led.off", "Led.blink"],
    "usr.qframe.ota": ["Fota", "Fota.get_result", "Fota.upgrade", "Fota.mini_upgrade",
                       "Fota.local_upgrade", "FileDecode", "FileDecode.get_update_files",
                       "FileDecode.unzip", "FileDecode.file_size", "FileDecode.get_file_name",
                       "FileDecode.get_data", "FileDecode.unpack", "AppFota",
                       "AppFota.set_update_flag", "AppFota.download", "AppFota.bulk_download",
                       "AppFota.download_tar"],
    "usr.qframe.builtins": ["TcpClient", "SmsClient", "Uart", "network"],
    "usr.qframe.builtins.network": ["NetWork", "NetWork.load", "NetWork.wait_network_ready",
                                    "NetWork.register_net_callback",
                                    "NetWork.register_sim_callback", "network"],
    "usr.qframe.builtins.uart": ["Uart", "Uart.init_app", "Uart.load",
                                 "Uart.listen_thread_worker", "Uart.recv_callback",
                                 "Uart.write", "Uart.read"],
    "usr.qframe.builtins.clients": ["TcpClient", "TcpClient.init_app", "TcpClient.load",
                                    "TcpClient.recv_callback", "TcpClient.send",
                                    "TcpClient.sock", "TcpClient.connect",
                                    "TcpClient.disconnect", "SmsClient"],
}
# Instance attributes QFrame sets (checked on live objects below).
APP_ATTRIBUTES = ["name", "config", "business_threads_pool", "submit", "extensions",
                  "append_extension", "mainloop", "network"]
CONFIG_ATTRIBUTES = ["from_json", "update", "get", "save"]     # QFrame's LocalStorage
UART_ATTRIBUTES = ["serial", "write", "read", "listen_thread"]


def _missing(names_by_module):
    missing = []
    for path in names_by_module:
        module = __import__(path, None, None, ["__name__"])
        for dotted in names_by_module[path]:
            owner = module
            for part in dotted.split("."):
                if not hasattr(owner, part):
                    missing.append("%s.%s" % (path, dotted))
                    break
                owner = getattr(owner, part)
    return missing


def test_every_qframe_module_class_and_function_exists():
    Application("names")    # `builtins.network.network` is the current app's extension
    assert _missing(QFRAME_NAMES) == []


def test_qframe_modules_import_from_the_package():
    import usr.qframe as package
    import usr.qframe.builtins as builtins
    for name in ("core", "globals", "collections", "threading", "serial", "qsocket", "datetime",
                 "led", "ota", "logging", "builtins"):
        assert getattr(package, name).__name__ == "usr.qframe." + name
    for name in ("network", "clients", "uart"):
        assert getattr(builtins, name).__name__ == "usr.qframe.builtins." + name


def test_qframe_instance_attributes_exist():
    from usr.qframe import Uart
    app = Application("names")
    app.config.update({"UART": {"port": 2}})
    uart = Uart("uart")
    uart.init_app(app)
    missing = [name for name in APP_ATTRIBUTES if not hasattr(app, name)]
    missing += ["config." + name for name in CONFIG_ATTRIBUTES if not hasattr(app.config, name)]
    missing += ["Uart." + name for name in UART_ATTRIBUTES if not hasattr(uart, name)]
    assert missing == []



def test_netwatch_has_its_own_module_and_is_still_found_where_it_lived():
    import usr.qframe.builtins.network as network
    from usr.qframe import NetWatch
    from usr.qframe.builtins.netwatch import NetWatch as home
    assert NetWatch is home and network.NetWatch is home
    assert issubclass(home, network.NetWork)
