import { constantSchedule, cosineSchedule, makeSchedule, oneCycleSchedule, stepSchedule, withWarmup } from '../src/train/schedule';

describe('schedules', () => {
  test('values at known points', () => {
    expect(constantSchedule()(0.7)).toBe(1);
    expect([0, 0.49, 0.5, 0.8].map(stepSchedule([0.5, 0.75], 0.1))).toEqual([1, 1, 0.1, 0.1 * 0.1]);
    const cos = cosineSchedule(0);
    expect(cos(0)).toBeCloseTo(1, 12);
    expect(cos(0.5)).toBeCloseTo(0.5, 12);
    expect(cos(1)).toBeCloseTo(0, 12);
    const one = oneCycleSchedule({ pctStart: 0.25, div: 25, final: 1e-5 });
    expect(one(0)).toBeCloseTo(1 / 25, 12);
    expect(one(0.125)).toBeCloseTo((1 / 25 + 1) / 2, 12);
    expect(one(0.25)).toBeCloseTo(1, 12);
    expect(one(0.625)).toBeCloseTo((1 + 1e-5) / 2, 12);
    expect(one(1)).toBeCloseTo(1e-5, 12);
    const warm = withWarmup(cosineSchedule(0), 0.2);
    expect(warm(0)).toBe(0);
    expect(warm(0.1)).toBeCloseTo(0.5 * cos(0.1), 12);
    expect(warm(0.5)).toBeCloseTo(cos(0.5), 12);
  });

  test('configs build the same functions and reject typos', () => {
    expect(makeSchedule({ type: 'cosine', warmup: 0.1 })(0.05)).toBeCloseTo(0.5 * cosineSchedule()(0.05), 12);
    expect(makeSchedule('one-cycle')(0.25)).toBeCloseTo(1, 12);
    expect(() => makeSchedule('cosin')).toThrow(/schedule must be one of constant, step, cosine, one-cycle; received "cosin"/);
    expect(() => makeSchedule({ type: 'step', gama: 0.5 } as never)).toThrow(/schedule has no option "gama"/);
    expect(() => makeSchedule({ type: 'step', milestones: [3] })).toThrow(/milestones must be progress fractions/);
  });
});
