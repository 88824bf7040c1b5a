/**
 * Errors are a closed set: every code in one union with one class each, a wrap
 * that keeps class and code, any thrown value converted, and the CLI naming
 * options as flags where the library names them as the API spells them.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as api from '../lib/index.js';
import {
  AbortedError,
  AlgorithmCallError,
  ConnectError,
  DirtyTargetError,
  ERROR_CLASSES,
  FileError,
  InternalError,
  JournalError,
  LoadMismatchError,
  RspflashError,
  ServerError,
  UsageError,
  VerifyError,
  toRspflashError,
  type RangeAtRisk,
  type RspflashErrorCode,
} from '../lib/errors.js';
import { EXIT, EXIT_CODES, OPTION_FLAGS, errorJSON, exitCodeOf, toFlags } from '../bin/output.js';

const CODES = Object.keys(ERROR_CLASSES) as RspflashErrorCode[];

/**
 * Compile-time check (tsc -p tsconfig.json): a switch over every code with a
 * `never` default. Adding a code to the union without a case here fails to
 * compile, which is what a caller's exhaustive switch gets too.
 */
function family(code: RspflashErrorCode): 'wire' | 'target' | 'input' | 'algorithm' | 'flash' | 'any' {
  switch (code) {
    case 'RSPFLASH_CONNECTION_CLOSED':
    case 'RSPFLASH_CONNECT_FAILED':
    case 'RSPFLASH_RSP_TIMEOUT':
    case 'RSPFLASH_PROTOCOL':
      return 'wire';
    case 'RSPFLASH_SERVER_ERROR':
    case 'RSPFLASH_UNSUPPORTED':
    case 'RSPFLASH_TARGET_STATE':
    case 'RSPFLASH_TARGET_DIRTY':
    case 'RSPFLASH_REPLY_FORMAT':
      return 'target';
    case 'RSPFLASH_FORMAT':
    case 'RSPFLASH_IMAGE_OVERLAP':
    case 'RSPFLASH_FILE':
    case 'RSPFLASH_JOURNAL':
      return 'input';
    case 'RSPFLASH_RAM_LAYOUT':
    case 'RSPFLASH_LOAD_MISMATCH':
    case 'RSPFLASH_ALGO_FAULT':
    case 'RSPFLASH_ALGO_TIMEOUT':
    case 'RSPFLASH_ALGO_FAILED':
    case 'RSPFLASH_ALGO_STACK_OVERFLOW':
      return 'algorithm';
    case 'RSPFLASH_OUT_OF_FLASH':
    case 'RSPFLASH_VERIFY_FAILED':
      return 'flash';
    case 'RSPFLASH_ABORTED':
    case 'RSPFLASH_USAGE':
    case 'RSPFLASH_INTERNAL':
      return 'any';
    default: {
      const unhandled: never = code;
      throw new Error(`unhandled code ${String(unhandled)}`);
    }
  }
}

describe('the closed set of codes', () => {
  it('has one class per code, and each class constructs errors with its own code', () => {
    expect(CODES.length).toBeGreaterThanOrEqual(24);
    for (const code of CODES) {
      const Class = ERROR_CLASSES[code] as unknown as new (message: string) => RspflashError;
      const err = new Class('message');
      expect(err, code).toBeInstanceOf(RspflashError);
      expect(err.code, Class.name).toBe(code);
      expect(err.name).toBe(Class.name);
      expect(family(err.code), code).toBeTruthy();
    }
  });

  it('lists every error class the package exports', () => {
    const exported = Object.entries(api).filter(
      ([, value]) => typeof value === 'function' && value.prototype instanceof RspflashError,
    );
    const listed = new Set<unknown>(Object.values(ERROR_CLASSES));
    for (const [name, value] of exported) expect(listed.has(value), `${name} is missing from ERROR_CLASSES`).toBe(true);
    expect(exported.length).toBe(CODES.length);
  });

  it('does not let the base class be constructed with a bare code', () => {
    // @ts-expect-error the constructor is protected: a code needs its class.
    const make = () => new RspflashError('RSPFLASH_USAGE', 'x');
    expect(make).toBeTypeOf('function');
  });

  it('documents every code in docs/errors.md, with its class and exit code', () => {
    const doc = readFileSync('docs/errors.md', 'utf8');
    const table = doc.slice(0, doc.indexOf('\n---\n'));
    for (const code of CODES) {
      const Class = ERROR_CLASSES[code];
      expect(doc, `a section for ${code}`).toContain(`### \`${code}\` — \`${Class.name}\``);
      const row = table.split('\n').find((line) => line.includes(`\`${code}\``));
      expect(row, `${code} in the exit-code table`).toBeDefined();
      expect(row!.startsWith(`| ${EXIT_CODES[code]} |`), `${code} exits ${EXIT_CODES[code]}: ${row}`).toBe(true);
    }
  });
});

describe('RspflashError.within', () => {
  const original = new AlgorithmCallError('EraseSector(0xc0000000) returned 1', 'EraseSector', [0xc0000000], 1, {
    hint: 'Check write protection.',
  });
  const atRisk: RangeAtRisk[] = [{ address: 0xc0000000, length: 0x1000, state: 'erased' }];
  const wrapped = original.within('erase 0xc0000000..0xc0000fff', 'Erasing 0xc0000000..0xc0000fff failed: EraseSector(0xc0000000) returned 1', {
    atRisk,
  });

  it('returns a new error of the same class, code and fields', () => {
    expect(wrapped).not.toBe(original);
    expect(wrapped).toBeInstanceOf(AlgorithmCallError);
    expect(wrapped).toBeInstanceOf(RspflashError);
    expect(wrapped).toBeInstanceOf(Error);
    expect(wrapped.code).toBe('RSPFLASH_ALGO_FAILED');
    expect(wrapped.name).toBe('AlgorithmCallError');
    expect([wrapped.fn, wrapped.args, wrapped.result, wrapped.hint]).toEqual(['EraseSector', [0xc0000000], 1, 'Check write protection.']);
  });

  it('sets the message, the operation, the ranges at risk, and the original as cause', () => {
    expect(wrapped.message).toBe('Erasing 0xc0000000..0xc0000fff failed: EraseSector(0xc0000000) returned 1');
    expect(wrapped.operation).toBe('erase 0xc0000000..0xc0000fff');
    expect(wrapped.ranges).toEqual(atRisk);
    expect(wrapped.cause).toBe(original);
  });

  it('leaves the original untouched', () => {
    expect(original.message).toBe('EraseSector(0xc0000000) returned 1');
    expect(original.operation).toBeUndefined();
    expect(original.ranges).toBeUndefined();
    expect(original.cause).toBeUndefined();
  });

  it('keeps the stack of where it happened, headed by the new message', () => {
    expect(wrapped.stack).toBeDefined();
    expect(wrapped.stack!.split('\n')[0]).toBe(`AlgorithmCallError: ${wrapped.message}`);
    expect(wrapped.stack!.split('\n').slice(1)).toEqual(original.stack!.split('\n').slice(1));
  });

  it('shows the operation and the ranges in toJSON, not the cause', () => {
    const json = wrapped.toJSON();
    expect(json).toMatchObject({ code: 'RSPFLASH_ALGO_FAILED', operation: 'erase 0xc0000000..0xc0000fff', fn: 'EraseSector', ranges: atRisk });
    expect(json).not.toHaveProperty('cause');
    expect(JSON.parse(JSON.stringify(wrapped))).toEqual(json);
  });

  it('still lets a switch on the code narrow to the context fields', () => {
    const e: RspflashError = new VerifyError('differs', 0xc0000010).within('verify 0xc0000000..0xc0000fff', 'Verifying failed: differs');
    expect(e.code === 'RSPFLASH_VERIFY_FAILED' && e instanceof VerifyError ? e.address : undefined).toBe(0xc0000010);
  });

  it('wraps a wrap, keeping the chain of causes', () => {
    const twice = wrapped.within('program', 'Programming failed');
    expect(twice.cause).toBe(wrapped);
    expect((twice.cause as RspflashError).cause).toBe(original);
    expect(twice.ranges).toEqual(atRisk);
  });

  it('takes an error without ranges at risk without inventing any', () => {
    const e = new ServerError('E01', 'm 0x0,4', 'E01').within('read 0x00000000..0x00000003', 'Reading failed: E01');
    expect(e.ranges).toBeUndefined();
    expect(e.toJSON()).not.toHaveProperty('ranges');
  });
});

describe('toRspflashError', () => {
  it('returns an RspflashError as it is', () => {
    const e = new UsageError('bad');
    expect(toRspflashError(e)).toBe(e);
  });

  it("turns an aborted AbortSignal's reason into AbortedError", () => {
    const controller = new AbortController();
    controller.abort();
    const e = toRspflashError(controller.signal.reason);
    expect(e).toBeInstanceOf(AbortedError);
    expect(e.code).toBe('RSPFLASH_ABORTED');
    expect(e.cause).toBe(controller.signal.reason);
  });

  it('turns the TimeoutError of AbortSignal.timeout into AbortedError', async () => {
    const signal = AbortSignal.timeout(1);
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
    const e = toRspflashError(signal.reason);
    expect(e).toBeInstanceOf(AbortedError);
    expect(e.message).toMatch(/^Operation cancelled: /);
  });

  it('turns a file-system error into FileError with the path, the reason and the call', async () => {
    const err = await readFile('/nonexistent-rspflash/app.bin').catch((e: unknown) => e);
    const e = toRspflashError(err);
    expect(e).toBeInstanceOf(FileError);
    const f = e as FileError;
    expect([f.code, f.path, f.reason, f.syscall]).toEqual(['RSPFLASH_FILE', '/nonexistent-rspflash/app.bin', 'ENOENT', 'open']);
    expect(f.message).toBe('Cannot open /nonexistent-rspflash/app.bin: no such file or directory (ENOENT)');
    expect(f.hint).toMatch(/Check the path/);
    expect(f.cause).toBe(err);
  });

  it('names the file as the caller gave it with FileError.fromSystemError', async () => {
    const err = await readFile('/nonexistent-rspflash/app.bin').catch((e: unknown) => e);
    expect(FileError.fromSystemError(err, 'app.bin').message).toBe('Cannot open app.bin: no such file or directory (ENOENT)');
  });

  it('turns anything else into InternalError with the original as cause', () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'length')");
    const e = toRspflashError(bug);
    expect(e).toBeInstanceOf(InternalError);
    expect([e.code, e.message, e.cause]).toEqual(['RSPFLASH_INTERNAL', bug.message, bug]);
    expect(toRspflashError('a string').message).toBe('Non-error thrown: a string');
    // A socket error has a code and a syscall but no path: not a file.
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED', syscall: 'connect' });
    expect(toRspflashError(refused)).toBeInstanceOf(InternalError);
  });
});

describe('the CLI', () => {
  it('exits with a code for every error code: 2 input, 3 server or target, 4 algorithm, 5 verify, 130 cancelled, 1 bug', () => {
    expect(exitCodeOf(new FileError('Cannot open x', 'x'))).toBe(2);
    expect(exitCodeOf(new JournalError('Cannot write the recovery journal j', 'j'))).toBe(2);
    expect(exitCodeOf(new DirtyTargetError('PC on the trap', 'PC 0x20000404 is on the return trap'))).toBe(3);
    expect(exitCodeOf(new LoadMismatchError('did not read back', 0x48000000))).toBe(4);
    expect(exitCodeOf(new VerifyError('differs', 0))).toBe(5);
    expect(exitCodeOf(new AbortedError())).toBe(130);
    expect(exitCodeOf(new TypeError('bug'))).toBe(EXIT.internal);
    expect(exitCodeOf(Object.assign(new Error('unknown option'), { code: 'commander.error' }))).toBe(EXIT.usage);
    expect(new Set(Object.values(EXIT_CODES))).toEqual(new Set(Object.values(EXIT).filter((c) => c !== EXIT.ok)));
  });

  it('translates options named in backticks into its flags', () => {
    expect(toFlags('Give `preserve: false` to let chip erase wipe them')).toBe('Give --no-preserve to let chip erase wipe them');
    expect(toFlags('Check the RAM region (`ram`)')).toBe('Check the RAM region (--ram ADDR:SIZE)');
    expect(toFlags("use sector erase (`chipErase: 'auto'` or `chipErase: 'never'`)")).toBe('use sector erase (--chip-erase auto or --chip-erase never)');
    expect(toFlags('`base` is required for .bin images')).toBe('--base ADDR is required for .bin images');
    expect(toFlags('use `GdbClient.monitor` instead')).toBe('use `GdbClient.monitor` instead');
  });

  it('prints messages and hints with flags in --json too, and bugs as RSPFLASH_INTERNAL', () => {
    const json = errorJSON(new ConnectError('Cannot connect to the GDB server at localhost:1: refused', 'localhost', 1));
    expect(json).toMatchObject({ code: 'RSPFLASH_CONNECT_FAILED', host: 'localhost', port: 1 });
    expect(json.hint).toMatch(/check its address \(--gdb HOST:PORT\)/);
    expect(errorJSON(new RangeError('oops'))).toMatchObject({ name: 'InternalError', code: 'RSPFLASH_INTERNAL', message: 'oops' });
  });

  it('maps options only to flags it defines', () => {
    const cli = readFileSync('bin/rspflash.ts', 'utf8');
    for (const [option, flag] of Object.entries(OPTION_FLAGS)) {
      const name = flag.split(' ')[0]!;
      expect(cli.includes(`'${name} `) || cli.includes(`'${name}'`), `${option} → ${name}: no such flag in bin/rspflash.ts`).toBe(true);
    }
  });
});

/** Library files whose strings still name CLI flags (`--core`, `--pack`), waiting for their owners: remove each once it is clean. */
const FLAGS_PENDING = new Set<string>([]);

describe('the library', () => {
  it('names options as the API spells them, never as CLI flags, in its strings', () => {
    const offenders: string[] = [];
    const walk = (dir: string): string[] =>
      readdirSync(dir).flatMap((name) => {
        const path = join(dir, name);
        return statSync(path).isDirectory() ? walk(path) : path.endsWith('.ts') ? [path] : [];
      });
    for (const file of walk('lib')) {
      if (FLAGS_PENDING.has(file)) continue;
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (/^\s*(\/\/|\*|\/\*)/.test(line)) return;
          // A flag inside a string literal: a quote, then anything but a quote, then --word.
          if (/(['"`])[^'"`]*--[a-z]/.test(line)) offenders.push(`${file}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(offenders, offenders.join('\n')).toEqual([]);
  });
});
