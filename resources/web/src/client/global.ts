// Entry of the script-tag build: like the original's UMD bundle, it defines the global
// `BrowserToRtmpClient`, so pages written for the original work with this file.
import { BrowserToRtmpClient } from "./index";

(globalThis as unknown as Record<string, unknown>).BrowserToRtmpClient = BrowserToRtmpClient;
