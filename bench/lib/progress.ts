/** One status line on stderr: step i/n, its label, and the time since the run began. */
export function createProgress(startedAt: number) {
  let n = 0;
  let i = 0;
  let label = '';
  let timer: NodeJS.Timeout | null = null;
  const tty = process.stderr.isTTY;
  const elapsed = () => {
    const s = Math.round((performance.now() - startedAt) / 1000);
    return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  };
  const line = () => `[${i}/${n}] ${elapsed()}  ${label}`;
  const draw = () => {
    const text = line();
    const width = process.stderr.columns ?? 120;
    process.stderr.write(`\r\x1b[2K${text.length > width ? `${text.slice(0, width - 1)}…` : text}`);
  };
  return {
    begin(total: number) {
      n = total;
      if (tty) timer = setInterval(draw, 1000);
    },
    step(next: string) {
      i++;
      label = next;
      if (tty) draw();
      else process.stderr.write(`${line()}\n`);
    },
    done() {
      if (timer) clearInterval(timer);
      if (tty) process.stderr.write(`\r\x1b[2K[${n}/${n}] ${elapsed()}  done\n`);
    },
  };
}
