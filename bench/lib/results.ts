/** The shape of bench/results/latest.json. */
export interface Machine {
  cpuModel: string;
  cores: number;
  ramGb: number;
  node: string;
  os: string;
  date: string;
  loadAverageAtStart: number[];
}

export interface LoadScenario {
  id: string;
  system: 'baseline 1 (Express + validator, fixed body)' | 'baseline 2 (Express + Stripe SDK)' | 'service';
  operation: string;
  store?: 'sqlite' | 'postgres';
  broker?: 'rabbitmq' | 'memory';
  role?: 'api' | 'all';
  auth: boolean;
  connections: number;
  durationSec: number;
  reqPerSec: number;
  requests: number;
  statuses: Record<string, number>;
  errors: number;
  latencyMs: { p50: number; p99: number; p999: number; max: number };
  /** Highest VmRSS sampled during the scenario, per process. */
  peakRssMb: Record<string, number>;
  /**
   * Average CPU in use during the measured rounds, in cores: the whole machine, this bench's process
   * tree (service, sandbox, baselines, load generator), and everything else (other users of the
   * machine and the shared PostgreSQL and RabbitMQ servers).
   */
  cpuCores: { machine: number; bench: number; other: number; loadAverage: number };
  /**
   * CPU time (all threads, from /proc) each measured process used during the rounds, divided by the
   * answers with the expected status: what one request costs that process, whatever else the machine
   * was doing. Resolution is one 10 ms tick over thousands of requests.
   */
  cpuUsPerRequest: Record<string, number>;
  /**
   * The same for each process's main thread alone (the JavaScript thread, which limits its throughput).
   * Absent up to and including run benchmx0ne2tp.
   */
  mainThreadUsPerRequest?: Record<string, number>;
  baselineId?: string;
  ratio?: number;
  targetRatio?: number;
  pass?: boolean;
  note?: string;
}

export interface DurabilityCheck {
  scenarioId: string;
  accepted202: number;
  missingLedgerRows: number;
  outboxPendingAfterDrain: number;
  /** Messages on the requests queue afterwards (RabbitMQ, nothing consuming it): should equal accepted202. */
  requestsQueueDepth: number | null;
  pass: boolean;
}

export interface DrainRun {
  id: string;
  store: 'sqlite' | 'postgres';
  broker: 'rabbitmq' | 'memory';
  workers: number;
  refunds: number;
  fillPerSec: number;
  /** Worker process spawn to the ledger showing every refund terminal. */
  seconds: number;
  perSec: number;
  /** From the first succeeded refund seen to the last: the rate without process start-up. */
  steadyPerSec: number;
  byStatus: Record<string, number>;
  peakRssMb: Record<string, number>;
  target: number;
  pass: boolean;
}

export interface ReadyTime {
  process: string;
  ms: number;
}

export interface BenchResults {
  runId: string;
  machine: Machine;
  command: string;
  settings: Record<string, string | number | boolean>;
  wallSeconds: number;
  scenarios: LoadScenario[];
  durability: DurabilityCheck[];
  drains: DrainRun[];
  readiness: ReadyTime[];
  /** Lifetime peak RSS (VmHWM) of every service process. */
  serviceHwmMb: Record<string, number>;
  targets: { name: string; target: string; measured: string; pass: boolean }[];
  notes: string[];
}
