/**
 * The flash-adding GDB proxy (`rspflash serve`): {@link serve} and the pure
 * pieces it is made of, for tests and tools.
 * @module
 */
export { serve, HANDLED_PACKETS, type ServeOptions, type ProxyHandle, type ListenAddress } from './proxy.js';
export { buildMemoryMap, flashRegions, memoryMapXml } from './memory-map.js';
export { crcMpeg2, CRC_MPEG2_POLY, CRC_MPEG2_INIT } from './crc.js';
export { editSupported, parseRspflashCommand, MONITOR_HELP, type MonitorCommand } from './packets.js';
export { FlashLoad } from './flash-load.js';
