/** Writes latest.json, latest.md and latest.svg (and a per-run copy of the first two under runs/). */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BenchResults, LoadScenario } from './results.js';

const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '-');
const f2 = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(2));
const mark = (pass: boolean | undefined) => (pass === undefined ? '' : pass ? 'PASS' : 'MISS');

function where(s: LoadScenario): string {
  if (s.system !== 'service') return '-';
  return `${s.store}+${s.broker}, ROLE=${s.role}${s.auth ? ', auth on' : ''}`;
}

function unexpected(s: LoadScenario): string {
  const expected = s.operation.startsWith('POST /refund-async') ? '202' : '200';
  const other = Object.entries(s.statuses)
    .filter(([code]) => code !== expected)
    .map(([code, n]) => `${n}×${code}`);
  if (s.errors > 0) other.push(`${s.errors} socket errors/timeouts`);
  return other.join(', ') || '0';
}

export function renderMarkdown(r: BenchResults): string {
  const m = r.machine;
  const lines: string[] = [];
  lines.push(`# Benchmark ${r.runId}`);
  lines.push('');
  lines.push(`Measured ${m.date} with \`${r.command}\` in ${f0(r.wallSeconds)} s.`);
  lines.push('');
  lines.push('| Machine | |');
  lines.push('|---|---|');
  lines.push(`| CPU | ${m.cpuModel} |`);
  lines.push(`| Cores | ${m.cores} |`);
  lines.push(`| RAM | ${m.ramGb} GB |`);
  lines.push(`| Node | ${m.node} |`);
  lines.push(`| OS | ${m.os} |`);
  lines.push(`| Load average at start | ${m.loadAverageAtStart.join(' / ')} |`);
  lines.push('');
  lines.push(
    `Settings: ${Object.entries(r.settings)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(', ')}.`,
  );
  lines.push('');
  lines.push('## Targets');
  lines.push('');
  lines.push('| | Target | Measured | |');
  lines.push('|---|---|---|---|');
  for (const t of r.targets) lines.push(`| ${t.name} | ${t.target} | ${t.measured} | ${mark(t.pass)} |`);
  lines.push('');
  lines.push('## Load scenarios');
  lines.push('');
  lines.push(
    'req/s counts only the expected status (200, or 202 for POST /refund-async); latency percentiles are exact, over ' +
      'every answer of the measured rounds. Each service scenario and its baseline run in alternating rounds ' +
      '(B S S B), so a burst of outside load lands on both. Peak RSS is the highest VmRSS sampled every 200 ms. ' +
      'CPU is the average number of cores busy during the rounds: the whole machine / this bench (service, ' +
      'sandbox, baselines, load generator) / everything else (other users of the machine and the shared ' +
      'PostgreSQL and RabbitMQ servers). CPU µs/req is the CPU time of each measured process (all its threads) ' +
      'during the rounds divided by the answers it gave: the cost of one request to that process.',
  );
  lines.push('');
  lines.push(
    '| System | Operation | Where | req/s | p50 ms | p99 ms | p99.9 ms | Unexpected | Peak RSS MB | CPU cores | CPU µs/req | vs baseline | Target | |',
  );
  lines.push('|---|---|---|---:|---:|---:|---:|---|---|---|---|---:|---:|---|');
  for (const s of r.scenarios) {
    const rss = Object.entries(s.peakRssMb)
      .map(([p, mb]) => `${p} ${f0(mb)}`)
      .join(', ');
    const cpu = Object.entries(s.cpuUsPerRequest ?? {})
      .map(([p, us]) => `${p} ${f0(us)}`)
      .join(', ');
    lines.push(
      `| ${s.system} | ${s.operation} | ${where(s)} | ${f0(s.reqPerSec)} | ${s.latencyMs.p50} | ${s.latencyMs.p99} | ${s.latencyMs.p999} | ${unexpected(s)} | ${rss} | ${f2(s.cpuCores.machine)} / ${f2(s.cpuCores.bench)} / ${f2(s.cpuCores.other)} | ${cpu} | ${f2(s.ratio)} | ${s.targetRatio ?? ''} | ${mark(s.pass)} |`,
    );
  }
  const added = r.scenarios.flatMap((s) => {
    const base = s.baselineId ? r.scenarios.find((b) => b.id === s.baselineId) : undefined;
    const mine = s.cpuUsPerRequest?.[Object.keys(s.cpuUsPerRequest)[0] ?? ''];
    const theirs = base?.cpuUsPerRequest?.[Object.keys(base.cpuUsPerRequest)[0] ?? ''];
    const first = (r?: Record<string, number>) => (r ? r[Object.keys(r)[0] ?? ''] : undefined);
    const mineMain = first(s.mainThreadUsPerRequest);
    const theirsMain = first(base?.mainThreadUsPerRequest);
    return base && mine !== undefined && theirs !== undefined
      ? [{ s, base, mine, theirs, mineMain, theirsMain }]
      : [];
  });
  if (added.length > 0) {
    lines.push('');
    lines.push('### What the service adds per request');
    lines.push('');
    lines.push(
      "CPU of the process answering (service or baseline), per answered request, from the same rounds: all its threads, and its main (JavaScript) thread alone. On a 2-core machine shared with the sandbox and the load generator, the service's throughput follows these figures more than anything else; the main thread's is the one that caps it.",
    );
    lines.push('');
    lines.push(
      '| Service scenario | Baseline | Service µs/req | Baseline µs/req | Added µs/req | × baseline | Main thread µs/req, service / baseline | × baseline |',
    );
    lines.push('|---|---|---:|---:|---:|---:|---:|---:|');
    for (const { s, base, mine, theirs, mineMain, theirsMain } of added) {
      const main =
        mineMain !== undefined && theirsMain !== undefined
          ? `${f0(mineMain)} / ${f0(theirsMain)} | ${theirsMain > 0 ? f2(mineMain / theirsMain) : '-'}`
          : '- | -';
      lines.push(
        `| ${s.id} | ${base.id} | ${f0(mine)} | ${f0(theirs)} | ${f0(mine - theirs)} | ${theirs > 0 ? f2(mine / theirs) : '-'} | ${main} |`,
      );
    }
  }
  const noted = r.scenarios.filter((s) => s.note);
  if (noted.length > 0) {
    lines.push('');
    for (const s of noted) lines.push(`- ${s.id}: ${s.note}`);
  }
  lines.push('');
  lines.push('## Durability of accepted refunds');
  lines.push('');
  lines.push(
    'After each POST /refund-async run the ledger is read straight from the database: every request id answered 202 ' +
      'must have a refund row, the outbox must empty (every row confirmed by the broker), and with RabbitMQ (nothing ' +
      'consuming, ROLE=api) the requests queue must hold at least one message per accepted refund.',
  );
  lines.push('');
  lines.push('| Scenario | 202 answers | Missing ledger rows | Outbox rows left | Requests queue depth | |');
  lines.push('|---|---:|---:|---:|---:|---|');
  for (const d of r.durability) {
    lines.push(
      `| ${d.scenarioId} | ${d.accepted202} | ${d.missingLedgerRows} | ${d.outboxPendingAfterDrain} | ${d.requestsQueueDepth ?? 'n/a (in-process)'} | ${mark(d.pass)} |`,
    );
  }
  lines.push('');
  lines.push('## Worker drain');
  lines.push('');
  lines.push(
    'RabbitMQ: the queue is filled through POST /refund-async on a ROLE=api process, which is then stopped; the clock ' +
      'starts when the ROLE=worker processes are spawned and stops when the ledger shows every refund final. ' +
      'In-process queue: the refunds wait in the outbox (written as an accepted POST /refund-async writes them) and one ' +
      'ROLE=all process is started. No STRIPE_MAX_RPS ceiling.',
  );
  lines.push('');
  lines.push(
    '| Run | Refunds | Fill rate /s | Seconds | refunds/s (from spawn) | refunds/s (first to last) | Final statuses | Peak RSS MB | |',
  );
  lines.push('|---|---:|---:|---:|---:|---:|---|---|---|');
  for (const d of r.drains) {
    lines.push(
      `| ${d.id} | ${d.refunds} | ${f0(d.fillPerSec)} | ${d.seconds.toFixed(1)} | ${f0(d.perSec)} | ${f0(d.steadyPerSec)} | ${Object.entries(
        d.byStatus,
      )
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')} | ${Object.entries(d.peakRssMb)
        .map(([p, mb]) => `${p} ${f0(mb)}`)
        .join(', ')} | ${mark(d.pass)} |`,
    );
  }
  lines.push('');
  lines.push('## Time to ready');
  lines.push('');
  lines.push('Process spawn to the first 200 from GET /healthz (polled every 5 ms).');
  lines.push('');
  lines.push('| Process | ms |');
  lines.push('|---|---:|');
  for (const t of r.readiness) lines.push(`| ${t.process} | ${f0(t.ms)} |`);
  lines.push('');
  lines.push('## Peak RSS of service processes');
  lines.push('');
  lines.push('Lifetime VmHWM from /proc/<pid>/status, read just before each process was stopped.');
  lines.push('');
  lines.push('| Process | MB |');
  lines.push('|---|---:|');
  for (const [p, mb] of Object.entries(r.serviceHwmMb)) lines.push(`| ${p} | ${f0(mb)} |`);
  if (r.notes.length > 0) {
    lines.push('');
    lines.push('## Notes');
    lines.push('');
    for (const n of r.notes) lines.push(`- ${n}`);
  }
  lines.push('');
  return lines.join('\n');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A hand-built horizontal bar chart: each service scenario beside its baseline, then the drain rates. */
export function renderSvg(r: BenchResults): string {
  const width = 960;
  const labelW = 360;
  const barMax = width - labelW - 250;
  const rowH = 18;
  const parts: string[] = [];
  let y = 40;
  const compared = r.scenarios.filter((s) => s.system === 'service' && s.baselineId);
  const maxRps = Math.max(1, ...r.scenarios.map((s) => s.reqPerSec));
  parts.push(
    `<text x="16" y="24" font-size="16" font-weight="bold">Requests/s: service (blue) vs its baseline (grey), ${esc(r.machine.date.slice(0, 10))}, ${r.machine.cores} cores</text>`,
  );
  for (const s of compared) {
    const base = r.scenarios.find((b) => b.id === s.baselineId);
    const bw = base ? (base.reqPerSec / maxRps) * barMax : 0;
    const sw = (s.reqPerSec / maxRps) * barMax;
    parts.push(`<text x="16" y="${y + 13}" font-size="12">${esc(s.id)}</text>`);
    parts.push(`<rect x="${labelW}" y="${y}" width="${bw.toFixed(1)}" height="${rowH / 2}" fill="#b0b0b0"/>`);
    parts.push(
      `<rect x="${labelW}" y="${y + rowH / 2}" width="${sw.toFixed(1)}" height="${rowH / 2}" fill="${s.pass ? '#2b6cb0' : '#c05621'}"/>`,
    );
    parts.push(
      `<text x="${(labelW + Math.max(bw, sw) + 6).toFixed(1)}" y="${y + 13}" font-size="11">${f0(s.reqPerSec)} vs ${base ? f0(base.reqPerSec) : '-'} = ${f2(s.ratio)} (target ${s.targetRatio})</text>`,
    );
    y += rowH + 8;
  }
  y += 20;
  parts.push(
    `<text x="16" y="${y}" font-size="16" font-weight="bold">Worker drain, refunds/s (target ${r.drains[0]?.target ?? 500}/s, dashed)</text>`,
  );
  y += 14;
  const maxDrain = Math.max(1, ...r.drains.map((d) => d.perSec), r.drains[0]?.target ?? 500) * 1.1;
  const targetX = labelW + ((r.drains[0]?.target ?? 500) / maxDrain) * barMax;
  const drainTop = y;
  for (const d of r.drains) {
    const w = (d.perSec / maxDrain) * barMax;
    parts.push(`<text x="16" y="${y + 13}" font-size="12">${esc(d.id)}</text>`);
    parts.push(
      `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${rowH}" fill="${d.pass ? '#2f855a' : '#c05621'}"/>`,
    );
    parts.push(
      `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 13}" font-size="11">${f0(d.perSec)}/s</text>`,
    );
    y += rowH + 8;
  }
  parts.push(
    `<line x1="${targetX.toFixed(1)}" y1="${drainTop - 4}" x2="${targetX.toFixed(1)}" y2="${y}" stroke="#000" stroke-dasharray="4 3"/>`,
  );
  y += 20;
  const rss = Object.entries(r.serviceHwmMb);
  parts.push(
    `<text x="16" y="${y}" font-size="16" font-weight="bold">Peak RSS per service process, MB (target 150, dashed)</text>`,
  );
  y += 14;
  const maxRss = Math.max(160, ...rss.map(([, mb]) => mb)) * 1.1;
  const rssTop = y;
  for (const [p, mb] of rss) {
    const w = (mb / maxRss) * barMax;
    parts.push(`<text x="16" y="${y + 13}" font-size="12">${esc(p)}</text>`);
    parts.push(
      `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${rowH}" fill="${mb < 150 ? '#2f855a' : '#c05621'}"/>`,
    );
    parts.push(`<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 13}" font-size="11">${f0(mb)}</text>`);
    y += rowH + 6;
  }
  const rssX = labelW + (150 / maxRss) * barMax;
  parts.push(
    `<line x1="${rssX.toFixed(1)}" y1="${rssTop - 4}" x2="${rssX.toFixed(1)}" y2="${y}" stroke="#000" stroke-dasharray="4 3"/>`,
  );
  y += 16;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

export function writeReport(r: BenchResults, dir: string): string[] {
  const md = renderMarkdown(r);
  const json = `${JSON.stringify(r, null, 2)}\n`;
  const files = {
    'latest.json': json,
    'latest.md': md,
    'latest.svg': renderSvg(r),
    [`runs/${r.runId}.json`]: json,
    [`runs/${r.runId}.md`]: md,
  };
  mkdirSync(path.join(dir, 'runs'), { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return Object.keys(files).map((n) => path.join(path.relative(process.cwd(), dir), n));
}
